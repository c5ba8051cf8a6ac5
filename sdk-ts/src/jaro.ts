/**
 * Jaro-Winkler similarity over Unicode code points, computed exactly as the Rust
 * crate strsim 0.11 does (prefix scale 0.1, prefix of at most 4, boost only above
 * 0.7), so every SDK suggests the same names.
 */
export function jaroWinkler(a: string, b: string): number {
  const ar = Array.from(a);
  const br = Array.from(b);
  const sim = jaro(ar, br);
  if (sim <= 0.7) {
    return sim;
  }
  let prefix = 0;
  while (prefix < 4 && prefix < ar.length && prefix < br.length && ar[prefix] === br[prefix]) {
    prefix++;
  }
  return sim + 0.1 * prefix * (1.0 - sim);
}

function jaro(a: readonly string[], b: readonly string[]): number {
  const la = a.length;
  const lb = b.length;
  if (la === 0 && lb === 0) {
    return 1.0;
  }
  if (la === 0 || lb === 0) {
    return 0.0;
  }
  let range = Math.floor(Math.max(la, lb) / 2);
  if (range > 0) {
    range--;
  }
  const aFlags = new Array<boolean>(la).fill(false);
  const bFlags = new Array<boolean>(lb).fill(false);
  let matches = 0;
  for (let i = 0; i < la; i++) {
    const lo = i > range ? i - range : 0;
    const hi = Math.min(lb, i + range + 1);
    for (let j = lo; j < hi; j++) {
      if (a[i] === b[j] && bFlags[j] !== true) {
        aFlags[i] = true;
        bFlags[j] = true;
        matches++;
        break;
      }
    }
  }
  if (matches === 0) {
    return 0.0;
  }
  let transpositions = 0;
  let j = 0;
  for (let i = 0; i < la; i++) {
    if (aFlags[i] !== true) {
      continue;
    }
    while (bFlags[j] !== true) {
      j++;
    }
    if (a[i] !== b[j]) {
      transpositions++;
    }
    j++;
  }
  transpositions = Math.floor(transpositions / 2);
  return (matches / la + matches / lb + (matches - transpositions) / matches) / 3.0;
}
