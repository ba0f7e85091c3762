/**
 * A small XML well-formedness check for the SVG figures (no dependency): one root element,
 * every tag closed in order, attributes quoted and not repeated, entities known, nothing
 * but whitespace, comments and the XML declaration outside the root. Returns null when
 * well-formed, else the first problem.
 */
const NAME = /^[A-Za-z_:][\w:.-]*$/;
const ENTITY = /&(?:amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);/y;

function checkText(s: string, at: number): string | null {
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '<') return `'<' in text at ${at + i}`;
    if (s[i] === '&') {
      ENTITY.lastIndex = i;
      if (!ENTITY.test(s)) return `bad entity at ${at + i}`;
    }
  }
  return null;
}

export function xmlProblem(doc: string): string | null {
  const stack: string[] = [];
  let roots = 0;
  let i = 0;
  if (doc.startsWith('<?xml')) {
    const end = doc.indexOf('?>');
    if (end < 0) return 'unclosed XML declaration';
    i = end + 2;
  }
  while (i < doc.length) {
    const lt = doc.indexOf('<', i);
    const textEnd = lt < 0 ? doc.length : lt;
    const text = doc.slice(i, textEnd);
    if (stack.length === 0 && text.trim() !== '') return `text outside the root at ${i}`;
    const bad = checkText(text, i);
    if (bad) return bad;
    if (lt < 0) break;
    if (doc.startsWith('<!--', lt)) {
      const end = doc.indexOf('-->', lt + 4);
      if (end < 0) return 'unclosed comment';
      i = end + 3;
      continue;
    }
    if (doc.startsWith('<![CDATA[', lt)) {
      const end = doc.indexOf(']]>', lt);
      if (end < 0) return 'unclosed CDATA';
      i = end + 3;
      continue;
    }
    // Find the tag's end, honouring quoted attribute values.
    let j = lt + 1;
    let quote = '';
    for (; j < doc.length; j++) {
      const ch = doc[j];
      if (quote) {
        if (ch === quote) quote = '';
        else if (ch === '<') return `'<' in an attribute value at ${j}`;
      } else if (ch === '"' || ch === "'") quote = ch;
      else if (ch === '>') break;
    }
    if (j >= doc.length) return `unclosed tag at ${lt}`;
    const tag = doc.slice(lt + 1, j);
    i = j + 1;
    if (tag.startsWith('/')) {
      const name = tag.slice(1).trim();
      const open = stack.pop();
      if (open !== name) return `</${name}> closes <${open ?? 'nothing'}> at ${lt}`;
      continue;
    }
    if (tag.startsWith('?') || tag.startsWith('!')) return `unexpected <${tag.slice(0, 10)}> at ${lt}`;
    const selfClosing = tag.endsWith('/');
    const body = selfClosing ? tag.slice(0, -1) : tag;
    const m = /^([^\s/>]+)([\s\S]*)$/.exec(body);
    if (!m || !NAME.test(m[1])) return `bad tag name at ${lt}`;
    const attrs = m[2];
    const seen = new Set<string>();
    const re = /\s+([^\s=]+)\s*=\s*("([^"]*)"|'([^']*)')/y;
    let k = 0;
    while (k < attrs.length) {
      if (/^\s*$/.test(attrs.slice(k))) break;
      re.lastIndex = k;
      const a = re.exec(attrs);
      if (!a) return `bad attribute in <${m[1]}> at ${lt}: '${attrs.slice(k, k + 30)}'`;
      if (!NAME.test(a[1])) return `bad attribute name '${a[1]}' at ${lt}`;
      if (seen.has(a[1])) return `repeated attribute '${a[1]}' at ${lt}`;
      seen.add(a[1]);
      const bad2 = checkText(a[3] ?? a[4] ?? '', lt);
      if (bad2) return `in attribute '${a[1]}': ${bad2}`;
      k = re.lastIndex;
    }
    if (stack.length === 0) roots++;
    if (roots > 1) return `second root element at ${lt}`;
    if (!selfClosing) stack.push(m[1]);
  }
  if (stack.length > 0) return `unclosed <${stack[stack.length - 1]}>`;
  if (roots !== 1) return 'no root element';
  return null;
}
