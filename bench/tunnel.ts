// Opening a CONNECT tunnel through a proxy, from the client side.
import net from 'node:net';

export interface Tunnel {
  socket: net.Socket;
  /** Bytes that arrived after the proxy's response head (tunnel data already). */
  leftover: Buffer;
}

/** CONNECTs to 127.0.0.1:`targetPort` through the proxy on `proxyPort`; resolves on a 200. `extraHeaders`: CRLF-terminated lines. */
export function openTunnel(proxyPort: number, targetPort: number, timeoutMs = 10_000, extraHeaders = ''): Promise<Tunnel> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port: proxyPort, noDelay: true });
    let head = Buffer.alloc(0);
    const fail = (why: string) => {
      clearTimeout(timer);
      socket.destroy();
      reject(new Error(`CONNECT through :${proxyPort}: ${why}`));
    };
    const timer = setTimeout(() => fail(`no response within ${timeoutMs} ms`), timeoutMs);
    socket.on('error', (error) => fail(error.message));
    socket.on('close', () => fail('closed before a response'));
    socket.on('connect', () => socket.write(`CONNECT 127.0.0.1:${targetPort} HTTP/1.1\r\nHost: 127.0.0.1:${targetPort}\r\n${extraHeaders}\r\n`));
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      const status = head.toString('latin1', 0, head.indexOf('\r\n'));
      if (!/^HTTP\/1\.[01] 200/.test(status)) return fail(`answered "${status}"`);
      clearTimeout(timer);
      socket.off('data', onData);
      socket.removeAllListeners('error').removeAllListeners('close');
      socket.on('error', () => {});
      socket.pause();
      resolve({ socket, leftover: head.subarray(end + 4) });
    };
    socket.on('data', onData);
  });
}
