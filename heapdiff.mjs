import 'reflect-metadata';
import v8 from 'node:v8';
import net from 'node:net';
import { startProxy, startRawOrigin, openTunnel } from './dist/test/helpers/net.js';
function census() {
  global.gc(); global.gc();
  const snap = JSON.parse(require_snapshot());
  const f = snap.snapshot.meta.node_fields, types = snap.snapshot.meta.node_types[0];
  const n = f.length, nodes = snap.nodes, strings = snap.strings;
  const ti = f.indexOf('type'), ni = f.indexOf('name'), si = f.indexOf('self_size');
  const m = new Map();
  for (let i = 0; i < nodes.length; i += n) {
    const key = types[nodes[i + ti]] + ':' + strings[nodes[i + ni]].slice(0, 60);
    const e = m.get(key) ?? [0, 0]; e[0]++; e[1] += nodes[i + si]; m.set(key, e);
  }
  return m;
}
function require_snapshot() {
  const chunks = []; const s = v8.getHeapSnapshot(); let c; while ((c = s.read()) !== null) chunks.push(c); return Buffer.concat(chunks).toString();
}
const origin = await startRawOrigin(() => {});
const proxy = await startProxy();
const N = 1000;
for (let i = 0; i < 20; i++) await openTunnel(proxy.port, `127.0.0.1:${origin.port}`);
const before = census();
const socks = [];
for (let i = 0; i < N; i++) socks.push((await openTunnel(proxy.port, `127.0.0.1:${origin.port}`)).socket);
const after = census();
const rows = [];
let total = 0;
for (const [k, [c, s]] of after) { const b = before.get(k) ?? [0, 0]; const dc = c - b[0], ds = s - b[1]; total += ds; if (ds > 0) rows.push([k, dc / N, ds / N]); }
rows.sort((a, b) => b[2] - a[2]);
console.log('total bytes/tunnel (client+proxy+origin sides)', (total / N).toFixed(0));
for (const r of rows.slice(0, 45)) console.log(r[2].toFixed(0).padStart(6), r[1].toFixed(2).padStart(6), r[0]);
process.exit(0);
