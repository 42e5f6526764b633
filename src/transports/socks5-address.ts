// IPv6 addresses between the 16 bytes SOCKS5 carries and the text form Node and URLs use. The
// WHATWG URL parser does the normalizing (RFC 5952 compression, an IPv4 tail written in hex).

/** The compressed text form of an IPv6 address text (`0:0:0:0:0:0:0:1` → `::1`). */
export function normalizeIpv6(text: string): string {
  return new URL(`http://[${text}]/`).hostname.slice(1, -1);
}

/** The compressed text form of 16 address bytes. */
export function ipv6Text(bytes: Buffer): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16));
  return normalizeIpv6(groups.join(':'));
}

/** The 16 bytes of an IPv6 address text (one `net.isIPv6` accepts; a zone after `%` is ignored). */
export function ipv6Bytes(text: string): Buffer {
  const [head, tail] = normalizeIpv6(text.split('%')[0]!).split('::') as [string, string | undefined];
  const front = head === '' ? [] : head.split(':');
  const back = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? front : [...front, ...Array<string>(8 - front.length - back.length).fill('0'), ...back];
  const bytes = Buffer.alloc(16);
  groups.forEach((group, i) => bytes.writeUInt16BE(parseInt(group, 16), i * 2));
  return bytes;
}
