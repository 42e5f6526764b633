import type { InjectionToken } from 'tsyringe';

/** Fields attached to a log record. */
export type LogFields = Record<string, unknown>;

/** The logging service plugins and the core use; swap it by registering another under `Logger`. */
export interface Logger {
  /** Records normal operation: a request done (the `logger` plugin), start-up. */
  info(message: string, fields?: LogFields): void;
  /** Records trouble the proxy survives: refused connections, dropped log records, no file descriptors. */
  warn(message: string, fields?: LogFields): void;
  /** Records a failure of the proxy itself: a bug, a plugin that threw in a hook. */
  error(message: string, fields?: LogFields): void;
}

/** Token for the {@link Logger} service. */
export const Logger: InjectionToken<Logger> = Symbol('Logger');

/** Writes one line per record to a stream (stderr by default, so stdout stays for the CLI). */
export class StreamLogger implements Logger {
  constructor(private readonly out: NodeJS.WritableStream = process.stderr) {}
  info(message: string, fields?: LogFields): void {
    this.write('info', message, fields);
  }
  warn(message: string, fields?: LogFields): void {
    this.write('warn', message, fields);
  }
  error(message: string, fields?: LogFields): void {
    this.write('error', message, fields);
  }
  private write(level: string, message: string, fields?: LogFields): void {
    const extra = fields ? ' ' + JSON.stringify(fields) : '';
    this.out.write(`${new Date().toISOString()} ${level} ${message}${extra}\n`);
  }
}

/** Drops everything (tests, embedding). */
export class SilentLogger implements Logger {
  info(): void {}
  warn(): void {}
  error(): void {}
}
