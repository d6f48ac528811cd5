/** inet_ntop(3) for the address bytes rtnetlink carries (glibc's output, including ::ffff:a.b.c.d). */

export function formatIPv4(b: Uint8Array): string {
  if (b.length !== 4) throw new RangeError(`IPv4 address of ${b.length} bytes`);
  return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
}

export function formatIPv6(b: Uint8Array): string {
  if (b.length !== 16) throw new RangeError(`IPv6 address of ${b.length} bytes`);
  const words: number[] = [];
  for (let i = 0; i < 16; i += 2) words.push(((b[i] ?? 0) << 8) | (b[i + 1] ?? 0));
  // Longest run of at least two zero words (first one on ties) becomes "::".
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (words[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) { best = i; bestLen = j - i; }
    i = j;
  }
  if (bestLen < 2) best = -1;
  // Embedded IPv4 as glibc prints it: ::a.b.c.d and ::ffff:a.b.c.d.
  const v4 = best === 0 && (bestLen === 6 || (bestLen === 5 && words[5] === 0xffff));
  let out = '';
  for (let i = 0; i < 8; i++) {
    if (best >= 0 && i >= best && i < best + bestLen) {
      if (i === best) out += '::';
      continue;
    }
    if (v4 && i === 6) {
      if (!out.endsWith(':')) out += ':';
      out += formatIPv4(b.subarray(12, 16));
      break;
    }
    if (out !== '' && !out.endsWith(':')) out += ':';
    out += (words[i] ?? 0).toString(16);
  }
  return out;
}
