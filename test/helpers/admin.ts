// Requests to an admin listener (or any small HTTP server) on 127.0.0.1, for tests.
import http from 'node:http';

/** One request on 127.0.0.1:port without an agent; resolves its status and whole body as text. */
export function adminRequest(port: number, method: string, target: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = http.request({ host: '127.0.0.1', port, method, path: target, agent: false });
    request.on('error', reject);
    request.on('response', (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
    });
    request.end();
  });
}

/** A GET on 127.0.0.1:port; resolves its status and body. */
export const adminGet = (port: number, target: string) => adminRequest(port, 'GET', target);
