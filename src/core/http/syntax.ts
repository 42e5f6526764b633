/** Character classes of RFC 9110 §5.6.2 (tchar) and §5.5 (field-vchar), as lookup tables. */
/** 1 for each tchar (RFC 9110 §5.6.2), by character code. */
export const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~") TCHAR[c.charCodeAt(0)] = 1;
for (let c = 0x30; c <= 0x39; c++) TCHAR[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) TCHAR[c] = 1;
for (let c = 0x61; c <= 0x7a; c++) TCHAR[c] = 1;

/** Whether `text` is a non-empty RFC 9110 token (method, header name, coding). */
export function isToken(text: string): boolean {
  if (text.length === 0) return false;
  for (let i = 0; i < text.length; i++) if (TCHAR[text.charCodeAt(i)] !== 1) return false;
  return true;
}

/** Whether `text` is a valid field value: no control characters but HTAB (so no NUL, CR or LF). */
export function isFieldValue(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c === 0x7f) return false;
  }
  return true;
}

/** Whether `text` is a request-target without whitespace or control characters. */
export function isRequestTarget(text: string): boolean {
  if (text.length === 0) return false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c <= 0x20 || c === 0x7f) return false;
  }
  return true;
}

/** Whether a character code is optional whitespace (RFC 9110 §5.6.3 OWS: SP or HTAB). */
export function isOws(code: number): boolean {
  return code === 0x20 || code === 0x09;
}
