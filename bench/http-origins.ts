// The origins of the keep-alive runs: nginx with its defaults (the main table: a real server's
// response head, and it closes a connection after `keepalive_requests` (1000) requests, as
// servers do) and the node:http one in bench/origin.ts (keeps connections for good). Both send a
// 1 KiB body and can tell how many TCP connections they accepted.
import { mkdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { startChildOnPort, type Child } from './procs.js';
import { freePort, which } from './proxies.js';

/** An HTTP origin the keep-alive load targets. */
export interface HttpOrigin {
  /** As in the table titles. */
  name: string;
  port: number;
  /** Request path of the 1 KiB resource. */
  path: string;
  /** TCP connections accepted so far (not counting the ones asking), or undefined if it cannot tell. */
  connections(): Promise<number | undefined>;
  /** Its process when the bench started one for it. */
  child?: Child;
}

/** The node:http keep-alive origin of bench/origin.js; its control port answers the count of accepted connections. */
export function nodeOrigin(port: number, countPort: number): HttpOrigin {
  const connections = () =>
    new Promise<number>((resolve, reject) => {
      const socket = net.connect(countPort, '127.0.0.1');
      let text = '';
      socket.setTimeout(5000, () => socket.destroy(new Error('origin count: no answer within 5 s')));
      socket.on('data', (chunk: Buffer) => (text += chunk.toString()));
      socket.on('error', reject);
      socket.on('end', () => resolve(Number(text.trim())));
    });
  return { name: 'node:http origin', port, path: '/', connections };
}

/** Where nginx is, if installed. */
export function nginxBinary(): string | undefined {
  return which('nginx') ?? ['/usr/sbin/nginx', '/usr/local/sbin/nginx'].find((p) => which(p));
}

/** `accepts` from nginx's stub_status page. */
function stubStatus(port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const request = http.get({ host: '127.0.0.1', port, path: '/nginx-status', agent: false, timeout: 5000 }, (response) => {
      let text = '';
      response.setEncoding('latin1');
      response.on('data', (chunk: string) => (text += chunk));
      response.on('end', () => {
        const match = /\n\s*(\d+) \d+ \d+/.exec(text);
        resolve(match ? Number(match[1]) : undefined);
      });
      response.on('error', () => resolve(undefined));
    });
    request.on('timeout', () => request.destroy());
    request.on('error', () => resolve(undefined));
  });
}

/**
 * nginx in one process in the foreground, on a free loopback port, serving a 1 KiB file, with
 * everything it writes in a temp dir and its defaults otherwise (keepalive_requests 1000,
 * keepalive_timeout 75 s, its own response head). stub_status on /nginx-status gives the count of
 * accepted connections.
 */
export async function startNginx(tmp: string, binary: string): Promise<HttpOrigin> {
  const dir = path.join(tmp, 'nginx');
  mkdirSync(path.join(dir, 'www'), { recursive: true });
  writeFileSync(path.join(dir, 'www', '1k.bin'), Buffer.alloc(1024, 0x62));
  const port = await freePort();
  const config = path.join(dir, 'nginx.conf');
  writeFileSync(
    config,
    [
      'daemon off;',
      'master_process off;',
      'worker_processes 1;',
      `error_log ${dir}/nginx.err;`,
      `pid ${dir}/nginx.pid;`,
      'events {}',
      'http {',
      '  access_log off;',
      ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((kind) => `  ${kind}_temp_path ${dir}/${kind};`),
      '  server {',
      `    listen 127.0.0.1:${port};`,
      `    root ${dir}/www;`,
      '    location = /1k.bin {}',
      '    location = /nginx-status { stub_status; }',
      '  }',
      '}',
      '',
    ].join('\n'),
  );
  const child = await startChildOnPort('nginx', binary, ['-p', `${dir}/`, '-e', `${dir}/nginx.err`, '-c', config], port, path.join(tmp, 'nginx.stderr.log'));
  let asked = 0; // each status request is one more accepted connection
  const connections = async () => {
    const accepts = await stubStatus(port);
    return accepts === undefined ? undefined : accepts - ++asked;
  };
  return { name: 'nginx origin', port, path: '/1k.bin', connections, child };
}
