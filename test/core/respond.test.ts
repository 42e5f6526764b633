import test from 'ava';
import { ERROR_TABLE, ProxyError, toProxyError } from '../../src/core/errors.js';
import { errorResponse } from '../../src/core/respond.js';

test('an error response has the status, Connection: close, and a one-line reason', (t) => {
  const text = errorResponse(new ProxyError('ERR_PROXY_UPSTREAM_CONNECT', 'cannot connect to a:1: connection refused')).toString();
  t.is(
    text,
    'HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 42\r\nConnection: close\r\n\r\ncannot connect to a:1: connection refused\n',
  );
});

test('internal errors hide their message', (t) => {
  const error = toProxyError(new TypeError('secret detail'));
  t.is(error.code, 'ERR_PROXY_INTERNAL');
  t.is(error.status, 500);
  t.false(errorResponse(error).toString().includes('secret'));
  t.true(errorResponse(error).toString().endsWith('\r\n\r\nInternal Server Error\n'));
  t.is(toProxyError('text').message, 'text');
});

test('a ProxyError passes through toProxyError unchanged and every code maps to its status', (t) => {
  const error = new ProxyError('ERR_PROXY_HEADERS_TOO_LARGE', 'x');
  t.is(toProxyError(error), error);
  for (const [code, { status }] of Object.entries(ERROR_TABLE)) {
    t.is(new ProxyError(code as keyof typeof ERROR_TABLE, 'x').status, status);
  }
});
