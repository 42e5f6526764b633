import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import bcrypt from 'bcryptjs';
import type { MonoTypeOperatorFunction, Subscriber } from 'rxjs';
import { inject, injectable } from 'tsyringe';
import type { ConnectionContext } from '../core/context.js';
import { ProxyError } from '../core/errors.js';
import type { ProxyEvent, RequestHeadEvent } from '../core/events.js';
import type { Exchange } from '../core/exchange.js';
import { getSoleHeader, type HeaderField } from '../core/http/head.js';
import { PluginBaseDir, PluginOptions, type PluginManifest, type ProxyPlugin } from '../core/plugin.js';
import { GateStage, stage } from '../core/stage.js';

/** Options of `proxy-auth`. */
export interface ProxyAuthOptions {
  /** Realm named in the `Proxy-Authenticate` challenge. */
  realm: string;
  /** htpasswd file of `name:bcrypt-hash` lines; a relative path starts at the config file's folder. */
  htpasswd?: string;
  /** Users given inline: name → bcrypt hash. */
  users?: Record<string, string>;
}

/** Verified credentials remembered (least recently used first out), so repeat requests skip bcrypt. */
export const CREDENTIALS_CACHE_SIZE = 1000;

/** A bcrypt hash as htpasswd and bcryptjs write it: `$2a$`, `$2b$` or `$2y$`, cost 04–31, 22 + 31 characters. */
const BCRYPT_HASH = /^\$2[aby]\$(?:0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}$/;
/** A user name: no colon (RFC 7617), no control characters. */
// eslint-disable-next-line no-control-regex -- matching control characters is the point: they are refused
const USER_NAME = /^[^:\x00-\x1f\x7f]+$/;
/** `Basic <token68>` with base64 credentials (scheme case-insensitive). */
const BASIC = /^basic +([A-Za-z0-9+/]+={0,2}) *$/i;

/**
 * Basic proxy authentication (RFC 9110 §11.7, RFC 7617): every request — plain HTTP and CONNECT —
 * must carry `Proxy-Authorization: Basic base64(user:pass)` matching a bcrypt hash from an htpasswd
 * file or the `users` option; anything else is answered 407 with a `Proxy-Authenticate` challenge.
 * On success the exchange's `user` is set. bcrypt runs asynchronously while the client is held
 * (a GateStage); verified credentials are cached by their SHA-256 so kept-alive connections and
 * returning clients pay for bcrypt once. An unknown user costs one bcrypt compare too, against a
 * dummy hash, so response times do not tell which user names exist.
 */
@injectable()
export class ProxyAuthPlugin implements ProxyPlugin {
  /** What the registry reads before constructing it: its plugins.json name, options schema and place in the chain. */
  static readonly manifest: PluginManifest = {
    name: 'proxy-auth',
    optionsSchema: {
      type: 'object',
      additionalProperties: false,
      properties: {
        realm: {
          type: 'string',
          default: 'proxyline',
          pattern: '^[ -~]*$',
          description: 'Realm named in the Proxy-Authenticate challenge (printable ASCII).',
        },
        htpasswd: {
          type: 'string',
          minLength: 1,
          description: "htpasswd file with bcrypt entries (name:$2y$…); a relative path starts at this file's folder.",
        },
        users: {
          type: 'object',
          propertyNames: { pattern: USER_NAME.source },
          additionalProperties: { type: 'string', pattern: BCRYPT_HASH.source },
          description: 'Users given inline: { "name": "<bcrypt hash>" }, merged with the htpasswd file\'s.',
        },
      },
    },
    after: ['head-parser'],
    before: ['upstream-dialer'],
  };
  readonly name = ProxyAuthPlugin.manifest.name;
  /** Name → bcrypt hash. */
  private readonly users = new Map<string, string>();
  /** A hash no password matches, compared for unknown users so they cost as much as known ones. */
  private readonly dummyHash: string;
  /** SHA-256 (base64) of verified `user:pass` bytes → user name; Map order is the LRU order. */
  private readonly verified = new Map<string, string>();
  /** Checks in progress by credential digest, so concurrent connections share one bcrypt run. */
  private readonly pending = new Map<string, Promise<string | undefined>>();
  private readonly challenge: readonly (readonly [string, string])[];

  constructor(@inject(PluginOptions) options: ProxyAuthOptions, @inject(PluginBaseDir) baseDir: string) {
    this.challenge = [['Proxy-Authenticate', `Basic realm="${options.realm.replace(/["\\]/g, '\\$&')}"`]];
    const fromFile = options.htpasswd === undefined ? new Map<string, number>() : this.readHtpasswd(path.resolve(baseDir, options.htpasswd));
    for (const [name, hash] of Object.entries(options.users ?? {})) {
      const line = fromFile.get(name);
      if (line !== undefined) {
        throw new Error(`user "${name}": expected in "htpasswd" or in "users", found in both (htpasswd line ${line})`);
      }
      this.users.set(name, hash);
    }
    if (this.users.size === 0) throw new Error('expected at least one user in "htpasswd" or "users", found none');
    this.dummyHash = bcrypt.hashSync(randomBytes(18).toString('base64'), usualCost(this.users.values()));
  }

  inbound(ctx: ConnectionContext): MonoTypeOperatorFunction<ProxyEvent> {
    return stage((downstream) => new AuthGate(downstream, ctx, this));
  }

  /**
   * Checks a request's credentials: the user name at once (missing, malformed, or cached), or a
   * promise of it (bcrypt running); `undefined`, at once or later, means refuse.
   * @internal
   */
  authenticate(headers: readonly HeaderField[]): string | undefined | Promise<string | undefined> {
    const header = getSoleHeader(headers, 'proxy-authorization');
    if (header === undefined) return undefined;
    const match = BASIC.exec(header);
    if (!match) return undefined;
    return this.check(Buffer.from(match[1]!, 'base64'));
  }

  /**
   * Checks a user name and password given outside HTTP (a SOCKS5 handshake, RFC 1929) exactly as
   * a Basic header carrying them is checked: same users, same cache, same bcrypt.
   */
  async verify(user: string, password: string): Promise<boolean> {
    if (!USER_NAME.test(user)) return false;
    return (await this.check(Buffer.from(`${user}:${password}`))) === user;
  }

  /** The user `user:pass` bytes prove, at once (cached, malformed) or once bcrypt ran; undefined: refuse. */
  private check(raw: Buffer): string | undefined | Promise<string | undefined> {
    const colon = raw.indexOf(0x3a);
    if (colon < 1) return undefined;
    // Looked up by digest, never by the secret itself: the map's own comparisons see only hashes.
    const digest = createHash('sha256').update(raw).digest('base64');
    const cached = this.verified.get(digest);
    if (cached !== undefined) {
      this.verified.delete(digest);
      this.verified.set(digest, cached);
      return cached;
    }
    let check = this.pending.get(digest);
    if (!check) {
      check = this.compare(raw.toString('utf8', 0, colon), raw.toString('utf8', colon + 1), digest);
      this.pending.set(digest, check);
    }
    return check;
  }

  /** The 407 answer. @internal */
  refusal(): ProxyError {
    return new ProxyError('ERR_PROXY_AUTH_REQUIRED', 'proxy authentication required', { headers: this.challenge });
  }

  private async compare(user: string, password: string, digest: string): Promise<string | undefined> {
    try {
      const hash = this.users.get(user);
      // bcryptjs compares the computed hash with the stored one in constant time.
      const ok = await bcrypt.compare(password, hash ?? this.dummyHash);
      if (!ok || hash === undefined) return undefined;
      this.verified.set(digest, user);
      if (this.verified.size > CREDENTIALS_CACHE_SIZE) this.verified.delete(this.verified.keys().next().value!);
      return user;
    } finally {
      this.pending.delete(digest);
    }
  }

  /** Loads `name:bcrypt-hash` lines; returns the line of each name. Throws naming file and line. */
  private readHtpasswd(file: string): Map<string, number> {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      const { code, message } = error as NodeJS.ErrnoException;
      throw new Error(`htpasswd: expected a readable file, found ${file} failing with ${code ?? message}`, { cause: error });
    }
    const lines = new Map<string, number>();
    for (const [index, rawLine] of text.split('\n').entries()) {
      const line = rawLine.trim();
      if (line === '' || line.startsWith('#')) continue;
      const at = `htpasswd file ${file} line ${index + 1}`;
      const colon = line.indexOf(':');
      if (colon < 0) throw new Error(`${at}: expected "name:bcrypt-hash", found a line without ":"`);
      const name = line.slice(0, colon);
      const hash = line.slice(colon + 1);
      if (!USER_NAME.test(name)) throw new Error(`${at}: expected a user name before ":", found ${name === '' ? 'none' : JSON.stringify(name)}`);
      if (!BCRYPT_HASH.test(hash))
        throw new Error(`${at} (user "${name}"): expected a bcrypt hash ($2y$, $2a$ or $2b$, cost 04-31, 60 characters), found ${describeHash(hash)}`);
      const earlier = lines.get(name);
      if (earlier !== undefined) throw new Error(`${at}: expected each user once, found "${name}" again (first on line ${earlier})`);
      lines.set(name, index + 1);
      this.users.set(name, hash);
    }
    return lines;
  }
}

/** Holds each request while its credentials are checked; refuses with 407. */
class AuthGate extends GateStage {
  constructor(
    downstream: Subscriber<ProxyEvent>,
    ctx: ConnectionContext,
    private readonly plugin: ProxyAuthPlugin,
  ) {
    super(downstream, ctx);
  }

  /** The credentials this connection last proved, and whose they are: kept-alive requests repeat them. */
  private lastCredentials?: string;
  private lastUser?: string;

  protected check(event: RequestHeadEvent): void | Promise<void> {
    const { exchange } = event;
    // The head as received: http-forward, if earlier in the chain, has removed the field already.
    const header = getSoleHeader(exchange.request.headers, 'proxy-authorization');
    if (header !== undefined && header === this.lastCredentials) {
      exchange.user = this.lastUser;
      return;
    }
    const result = this.plugin.authenticate(exchange.request.headers);
    if (typeof result === 'string') return this.accept(exchange, header!, result);
    if (result === undefined) throw this.refuse(event);
    return result.then((user) => {
      if (user === undefined) throw this.refuse(event);
      this.accept(exchange, header!, user);
    });
  }

  private accept(exchange: Exchange, credentials: string, user: string): void {
    exchange.user = user;
    this.lastCredentials = credentials;
    this.lastUser = user;
  }

  private refuse(event: RequestHeadEvent): ProxyError {
    event.exchange.answeredBy = this.plugin.name;
    return this.plugin.refusal();
  }
}

/** The cost most users' hashes have (the highest on a tie), for the dummy hash. */
function usualCost(hashes: Iterable<string>): number {
  const counts = new Map<number, number>();
  for (const hash of hashes) {
    const cost = Number(hash.slice(4, 6));
    counts.set(cost, (counts.get(cost) ?? 0) + 1);
  }
  let best = 0;
  let bestCount = 0;
  for (const [cost, count] of counts) {
    if (count > bestCount || (count === bestCount && cost > best)) [best, bestCount] = [cost, count];
  }
  return best;
}

/** What a non-bcrypt htpasswd entry looks like, without echoing it (it may be a plain-text password). */
function describeHash(hash: string): string {
  if (hash === '') return 'nothing';
  if (hash.startsWith('$apr1$')) return 'an MD5 ($apr1$) hash';
  if (hash.startsWith('{SHA}')) return 'a SHA-1 ({SHA}) hash';
  if (/^\$[156]\$/.test(hash)) return `a crypt(3) ${hash.slice(0, 3)} hash`;
  if (/^\$2[a-z]\$/.test(hash)) return `a malformed bcrypt hash (${hash.slice(0, 4)}…, ${hash.length} characters)`;
  return `something else (${hash.length} characters: crypt or plain text?)`;
}
