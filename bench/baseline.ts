// The minimal Node proxy proxyline is compared against: read one request head, dial, pipe.
import net from 'node:net';

const ESTABLISHED = Buffer.from('HTTP/1.1 200 Connection Established\r\n\r\n');
const port = Number(process.argv[process.argv.indexOf('--port') + 1] ?? 0);

// allowHalfOpen on both sockets: pipe() carries each direction's FIN across, as a proxy must.
const server = net.createServer({ allowHalfOpen: true }, (client) => {
  let head = Buffer.alloc(0);
  client.on('error', () => {});
  const onData = (chunk: Buffer) => {
    head = Buffer.concat([head, chunk]);
    const end = head.indexOf('\r\n\r\n');
    if (end < 0) return;
    client.off('data', onData);
    client.pause(); // removing the listener does not stop the flow; pipe() resumes it
    const [method = '', target = ''] = head.toString('latin1', 0, head.indexOf('\r\n')).split(' ');
    const url = method === 'CONNECT' ? new URL(`tcp://${target}`) : new URL(target);
    const upstream = net.connect({ host: url.hostname, port: Number(url.port || 80), allowHalfOpen: true }, () => {
      if (method === 'CONNECT') {
        client.write(ESTABLISHED);
        upstream.write(head.subarray(end + 4));
      } else {
        // Absolute-form request line becomes origin-form; everything after the target is kept.
        upstream.write(Buffer.concat([Buffer.from(`${method} ${url.pathname}${url.search}`), head.subarray(method.length + 1 + target.length)]));
      }
      client.pipe(upstream);
      upstream.pipe(client);
    });
    upstream.on('error', () => client.destroy());
    upstream.on('close', () => client.destroy());
    client.on('close', () => upstream.destroy());
  };
  client.on('data', onData);
});
server.listen(port, '127.0.0.1', () => {
  const address = server.address() as net.AddressInfo;
  process.stdout.write(`baseline listening on http://${address.address}:${address.port}\n`);
});
