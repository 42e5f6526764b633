import { EventEmitter } from 'node:events';
import test from 'ava';
import { guardErrors } from '../../src/core/source.js';

test('guardErrors adds one no-op error listener, however often a socket is guarded, and leaves the others', (t) => {
  const socket = new EventEmitter();
  const own = () => {};
  socket.on('error', own);
  guardErrors(socket);
  guardErrors(socket);
  guardErrors(socket);
  t.is(socket.listenerCount('error'), 2, 'its own listener and one guard');
  t.true(socket.listeners('error').includes(own));
  socket.off('error', own);
  t.notThrows(() => socket.emit('error', new Error('reset')), 'an error with no other listener is absorbed');
  guardErrors(socket);
  t.is(socket.listenerCount('error'), 1, 'still one guard');
});
