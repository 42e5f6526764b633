import test from 'ava';
import { ProxyError } from '../../../src/core/errors.js';
import { parseAbsoluteHttpTarget, parseAuthority } from '../../../src/core/http/target.js';

test('authority forms: name, IPv4 and bracketed IPv6, with ports', (t) => {
  t.deepEqual(parseAuthority('example.com:443'), { host: 'example.com', port: 443 });
  t.deepEqual(parseAuthority('127.0.0.1:8443'), { host: '127.0.0.1', port: 8443 });
  t.deepEqual(parseAuthority('[::1]:443'), { host: '::1', port: 443 });
  t.deepEqual(parseAuthority('[2001:db8::1]:1'), { host: '2001:db8::1', port: 1 });
});

test('a default port applies only when none is written', (t) => {
  t.deepEqual(parseAuthority('example.com', 80), { host: 'example.com', port: 80 });
  t.deepEqual(parseAuthority('[::1]', 80), { host: '::1', port: 80 });
  t.deepEqual(parseAuthority('example.com:8080', 80), { host: 'example.com', port: 8080 });
});

const badAuthorities: [string, string][] = [
  ['example.com', 'needs a port'],
  ['[::1]', 'needs a port'],
  ['example.com:', 'malformed port'],
  ['example.com:http', 'malformed port'],
  ['example.com:0', 'port out of range'],
  ['example.com:65536', 'port out of range'],
  ['example.com:123456', 'malformed port'],
  ['[::1', 'malformed IPv6'],
  ['[zz]:1', 'malformed IPv6'],
  ['[1.2.3.4]:1', 'malformed IPv6'],
  ['[::1]x:1', 'malformed port'],
  [':443', 'malformed host'],
  ['exa mple.com:1', 'malformed host'],
  ['a/b:1', 'malformed host'],
];
for (const [input, message] of badAuthorities) {
  test(`authority ${JSON.stringify(input)} is refused: ${message}`, (t) => {
    const error = t.throws(() => parseAuthority(input), { instanceOf: ProxyError });
    t.is(error?.status, 400);
    t.true(error?.message.includes(message), error?.message);
  });
}

test('absolute-form http targets split into authority and origin-form path', (t) => {
  t.deepEqual(parseAbsoluteHttpTarget('http://example.com/a/b?c=d#frag'), { host: 'example.com', port: 80, authority: 'example.com', path: '/a/b?c=d' });
  t.deepEqual(parseAbsoluteHttpTarget('HTTP://Example.com:8080'), { host: 'Example.com', port: 8080, authority: 'Example.com:8080', path: '/' });
  t.deepEqual(parseAbsoluteHttpTarget('http://[::1]:81?q'), { host: '::1', port: 81, authority: '[::1]:81', path: '/?q' });
});

const badTargets: [string, string][] = [
  ['/index.html', 'absolute URL'],
  ['*', 'absolute URL'],
  ['example.com:80', 'absolute URL'],
  ['https://example.com/', 'use CONNECT'],
  ['ftp://example.com/', 'not proxied'],
  ['http://user:pw@example.com/', 'credentials'],
  ['http:///path', 'malformed host'],
];
for (const [input, message] of badTargets) {
  test(`target ${JSON.stringify(input)} is refused: ${message}`, (t) => {
    const error = t.throws(() => parseAbsoluteHttpTarget(input), { instanceOf: ProxyError });
    t.true(error?.message.includes(message), error?.message);
  });
}
