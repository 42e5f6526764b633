import test from 'ava';
import {
  getHeader,
  getHeaderTokens,
  getSoleHeader,
  hasHeaderToken,
  requestHeadLength,
  serializeRequestHead,
  type RequestHead,
} from '../../../src/core/http/head.js';
import { withoutHopByHop } from '../../../src/core/http/hop-by-hop.js';

const head: RequestHead = {
  method: 'GET',
  target: '/x',
  version: '1.1',
  headers: [
    ['Host', 'a'],
    ['Connection', 'Keep-Alive, X-Private'],
    ['X-Private', '1'],
    ['Keep-Alive', 'timeout=5'],
    ['Proxy-Connection', 'keep-alive'],
    ['Proxy-Authorization', 'Basic eA=='],
    ['TE', 'trailers'],
    ['Trailer', 'X-T'],
    ['Upgrade', 'websocket'],
    ['x-lower', 'v'],
    ['X-Upper', 'V'],
  ],
};

test('header lookups are case-insensitive and tokens are split and lower-cased', (t) => {
  t.is(getHeader(head.headers, 'HOST'), 'a');
  t.is(getHeader(head.headers, 'missing'), undefined);
  t.deepEqual(getHeaderTokens(head.headers, 'connection'), ['keep-alive', 'x-private']);
});

test('getSoleHeader: the value of a field sent once (empty included); undefined when absent or repeated', (t) => {
  t.is(
    getSoleHeader(
      [
        ['Host', 'a'],
        ['Proxy-Authorization', 'Basic x'],
      ],
      'proxy-authorization',
    ),
    'Basic x',
  );
  t.is(getSoleHeader([['proxy-authorization', '']], 'Proxy-Authorization'), '');
  t.is(getSoleHeader([['Host', 'a']], 'proxy-authorization'), undefined);
  t.is(
    getSoleHeader(
      [
        ['Proxy-Authorization', 'Basic x'],
        ['Host', 'a'],
        ['PROXY-AUTHORIZATION', 'Basic x'],
      ],
      'proxy-authorization',
    ),
    undefined,
  );
  t.is(
    getSoleHeader(
      [
        ['Proxy-Authorization', ''],
        ['Proxy-Authorization', 'Basic x'],
      ],
      'proxy-authorization',
    ),
    undefined,
  );
});

test('hop-by-hop fields and those Connection names are removed; the rest keep order and case', (t) => {
  t.deepEqual(withoutHopByHop(head.headers), [
    ['Host', 'a'],
    ['x-lower', 'v'],
    ['X-Upper', 'V'],
  ]);
});

test('Connection cannot remove the framing fields (a smuggling vector)', (t) => {
  const headers = withoutHopByHop([
    ['Host', 'a'],
    ['Connection', 'content-length, transfer-encoding, host'],
    ['Content-Length', '5'],
  ]);
  t.deepEqual(headers, [
    ['Host', 'a'],
    ['Content-Length', '5'],
  ]);
});

test('hasHeaderToken finds a token in any field of the name, case-insensitively, around spaces, tabs and empty elements', (t) => {
  const headers: RequestHead['headers'] = [
    ['Host', 'a'],
    ['connection', ' ,Keep-Alive ,\t'],
    ['CONNECTION', 'x-a,  CLOSE\t'],
  ];
  t.true(hasHeaderToken(headers, 'connection', 'keep-alive'));
  t.true(hasHeaderToken(headers, 'connection', 'close'));
  t.true(hasHeaderToken(headers, 'connection', 'x-a'));
  t.false(hasHeaderToken(headers, 'connection', 'keep'), 'a prefix of a token is not the token');
  t.false(hasHeaderToken(headers, 'connection', 'close, x'), 'a token never spans a comma');
  t.false(hasHeaderToken(headers, 'host', 'b'));
  t.false(hasHeaderToken([], 'connection', 'close'));
  // The same answers as the allocating getHeaderTokens, for the tokens both see.
  for (const token of ['keep-alive', 'close', 'x-a'])
    t.is(hasHeaderToken(headers, 'connection', token), getHeaderTokens(headers, 'connection').includes(token));
});

test('Connection naming only fixed fields removes just those; naming another (close included) removes that field too', (t) => {
  const fixedOnly: RequestHead['headers'] = [
    ['Connection', 'keep-alive, , TE'],
    ['Close', 'not a real field'],
    ['X-Kept', '1'],
  ];
  t.deepEqual(withoutHopByHop(fixedOnly), [
    ['Close', 'not a real field'],
    ['X-Kept', '1'],
  ]);
  const namesOthers: RequestHead['headers'] = [
    ['Connection', 'keep-alive'],
    ['Connection', 'close,X-Gone'],
    ['Close', 'named by Connection'],
    ['x-gone', '1'],
    ['X-Kept', '1'],
  ];
  t.deepEqual(withoutHopByHop(namesOthers), [['X-Kept', '1']]);
});

test('serialization keeps order and case, and its length is computed without building it', (t) => {
  const bytes = serializeRequestHead(head);
  t.true(bytes.toString('latin1').startsWith('GET /x HTTP/1.1\r\nHost: a\r\nConnection: Keep-Alive, X-Private\r\n'));
  t.true(bytes.toString('latin1').endsWith('X-Upper: V\r\n\r\n'));
  t.is(requestHeadLength(head), bytes.length);
});
