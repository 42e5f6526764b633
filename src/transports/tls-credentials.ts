import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import tls from 'node:tls';
import { ProxyError } from '../core/errors.js';

/** A certificate chain and its private key, as the TLS listener serves them. */
export interface TlsCredentials {
  /** The certificate chain in PEM, the proxy's own certificate first, then any intermediates. */
  cert: string | Buffer;
  /** The private key of that certificate, in PEM, not encrypted. */
  key: string | Buffer;
}

/** What an error calls the certificate and the key: option names in code, flags and files in the CLI. */
export interface TlsCredentialNames {
  /** Names the certificate (e.g. `tls.cert`, or `--tls-cert ./cert.pem`). */
  cert: string;
  /** Names the key. */
  key: string;
}

const configError = (message: string) => new ProxyError('ERR_PROXY_CONFIG', message);

/** OpenSSL's reason, on one line (an error message must stay one line in the CLI). */
const reason = (error: unknown) => (error instanceof Error ? error.message : String(error)).split('\n')[0]!.trim();

/**
 * Checks that `cert` is a PEM certificate and `key` its PEM private key, and that Node's TLS takes
 * them; throws ERR_PROXY_CONFIG naming the one at fault. A bad pair then fails start-up rather
 * than every handshake.
 */
export function checkTlsCredentials(credentials: TlsCredentials, names: TlsCredentialNames = { cert: 'tls.cert', key: 'tls.key' }): void {
  const { cert, key } = credentials;
  // X509Certificate and createPrivateKey take DER too; the TLS context does not.
  if (!cert.toString('latin1').includes('-----BEGIN CERTIFICATE-----')) {
    throw configError(`${names.cert}: expected a PEM certificate, found no "-----BEGIN CERTIFICATE-----" line`);
  }
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(cert);
  } catch (error) {
    throw configError(`${names.cert}: expected a PEM certificate, found one that does not parse (${reason(error)})`);
  }
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(key.toString('latin1'))) {
    throw configError(`${names.key}: expected a PEM private key, found no "-----BEGIN … PRIVATE KEY-----" line`);
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key);
  } catch (error) {
    throw configError(`${names.key}: expected an unencrypted PEM private key, found one that does not load (${reason(error)})`);
  }
  if (!leaf.checkPrivateKey(privateKey)) throw configError(`${names.key}: expected the private key of ${names.cert}, found another key`);
  try {
    tls.createSecureContext({ cert, key });
  } catch (error) {
    throw configError(`${names.cert}: expected a certificate chain Node's TLS accepts, found it refused (${reason(error)})`);
  }
}

/** Reads the CLI's `--tls-cert` and `--tls-key` files and checks them; an error (ERR_PROXY_CONFIG) names the file. */
export async function readTlsFiles(certFile: string, keyFile: string): Promise<TlsCredentials> {
  const names = { cert: `--tls-cert ${certFile}`, key: `--tls-key ${keyFile}` };
  const cert = await readPem(certFile, names.cert);
  const key = await readPem(keyFile, names.key);
  checkTlsCredentials({ cert, key }, names);
  return { cert, key };
}

async function readPem(file: string, name: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (error) {
    throw configError(`${name}: expected a readable file, found ${(error as NodeJS.ErrnoException).code ?? reason(error)}`);
  }
}
