import { PassThrough } from 'node:stream';
import test from 'ava';
import { WorkerLogger } from '../../src/cluster/worker-logger.js';
import { StreamLogger } from '../../src/core/logger.js';

test('every record of a worker carries its id, beside the fields it had', (t) => {
  const out = new PassThrough();
  const lines: string[] = [];
  out.on('data', (chunk: Buffer) => lines.push(chunk.toString()));
  const logger = new WorkerLogger(new StreamLogger(out), 3);
  logger.info('plain');
  logger.warn('with fields', { pid: 42 });
  logger.error('overridden', { worker: 'kept last' });
  t.regex(lines[0]!, / info plain \{"worker":3\}\n$/);
  t.regex(lines[1]!, / warn with fields \{"worker":3,"pid":42\}\n$/);
  t.regex(lines[2]!, / error overridden \{"worker":"kept last"\}\n$/);
});
