// Text cleaning for AQA questions: what the original pipeline did, plus what it missed.
//
// The original (Python) ran `re.sub('<.*?>', '', text)` then `re.sub(r'http\S+|www.\S+', '', text)`
// on `question + " " + body` and nothing else, so entities stayed encoded: 770 of the 2,919 real
// validation questions carry entities (3,436 in all, mostly &quot; &amp; &lt; &#39; &gt;; 372
// titles have one), which a tokenizer turns into pieces like `& quot ;`.
// The default here also decodes entities, puts a space where a block tag stood (201 bodies have
// `</p><p>` or `</li><li>` with no whitespace between, which the original glued into one word),
// and collapses whitespace. `CLEAN_ORIGINAL` reproduces the original exactly.
//
// Order: tags, then URLs, then entities, then whitespace. Entities go after tags so that an
// escaped `&lt;b&gt;` in a code sample survives as the text `<b>` instead of being stripped.
// Python's `.` matches anything but \n, JavaScript's also refuses \r and U+2028/9: the patterns
// spell it `[^\n]` to match Python's behaviour on the same input.

export interface CleanOptions {
  /** Remove `<...>` on one line, non-greedy, as the original's `<.*?>` (default true). */
  stripTags?: boolean;
  /** With stripTags: block-level tags (p, br, li, div, pre, h1-6, tr, td, ...) become a space (default true). */
  spaceBlocks?: boolean;
  /** Remove `http\S+` and `www.\S+` (default true). */
  stripUrls?: boolean;
  /** Decode named (HTML 4 set) and numeric entities (default true). */
  decodeEntities?: boolean;
  /** Collapse runs of whitespace (incl. U+00A0) to one space and trim (default true). */
  normalizeSpace?: boolean;
}

const CLEAN_DEFAULT: Readonly<Required<CleanOptions>> = Object.freeze({
  stripTags: true,
  spaceBlocks: true,
  stripUrls: true,
  decodeEntities: true,
  normalizeSpace: true,
});

/** Exactly the original pipeline: tags and URLs removed, nothing else. */
export const CLEAN_ORIGINAL: Readonly<Required<CleanOptions>> = Object.freeze({
  stripTags: true,
  spaceBlocks: false,
  stripUrls: true,
  decodeEntities: false,
  normalizeSpace: false,
});

const TAG = /<[^\n]*?>/g;
const BLOCK_TAG = /^<\/?(?:p|br|hr|li|ul|ol|dl|dt|dd|div|pre|blockquote|h[1-6]|table|thead|tbody|tr|td|th)\b/i;
const URL = /http\S+|www[^\n]\S+/g;
const ENTITY = /&(#[0-9]{1,8}|#[xX][0-9a-fA-F]{1,8}|[A-Za-z][A-Za-z0-9]{1,31});/g;

// The 252 HTML 4 entities plus &apos; (name, code point), sorted by code point. The HTML5 list
// has 2,231 names; the real questions use 10 distinct named ones, all in this set. Unknown
// names are left as written.
const NAMED_TABLE =
  'quot 34 amp 38 apos 39 lt 60 gt 62 nbsp 160 iexcl 161 cent 162 pound 163 curren 164 yen 165 ' +
  'brvbar 166 sect 167 uml 168 copy 169 ordf 170 laquo 171 not 172 shy 173 reg 174 macr 175 deg 176 ' +
  'plusmn 177 sup2 178 sup3 179 acute 180 micro 181 para 182 middot 183 cedil 184 sup1 185 ordm 186 ' +
  'raquo 187 frac14 188 frac12 189 frac34 190 iquest 191 Agrave 192 Aacute 193 Acirc 194 Atilde 195 ' +
  'Auml 196 Aring 197 AElig 198 Ccedil 199 Egrave 200 Eacute 201 Ecirc 202 Euml 203 Igrave 204 ' +
  'Iacute 205 Icirc 206 Iuml 207 ETH 208 Ntilde 209 Ograve 210 Oacute 211 Ocirc 212 Otilde 213 ' +
  'Ouml 214 times 215 Oslash 216 Ugrave 217 Uacute 218 Ucirc 219 Uuml 220 Yacute 221 THORN 222 ' +
  'szlig 223 agrave 224 aacute 225 acirc 226 atilde 227 auml 228 aring 229 aelig 230 ccedil 231 ' +
  'egrave 232 eacute 233 ecirc 234 euml 235 igrave 236 iacute 237 icirc 238 iuml 239 eth 240 ' +
  'ntilde 241 ograve 242 oacute 243 ocirc 244 otilde 245 ouml 246 divide 247 oslash 248 ugrave 249 ' +
  'uacute 250 ucirc 251 uuml 252 yacute 253 thorn 254 yuml 255 OElig 338 oelig 339 Scaron 352 ' +
  'scaron 353 Yuml 376 fnof 402 circ 710 tilde 732 Alpha 913 Beta 914 Gamma 915 Delta 916 ' +
  'Epsilon 917 Zeta 918 Eta 919 Theta 920 Iota 921 Kappa 922 Lambda 923 Mu 924 Nu 925 Xi 926 ' +
  'Omicron 927 Pi 928 Rho 929 Sigma 931 Tau 932 Upsilon 933 Phi 934 Chi 935 Psi 936 Omega 937 ' +
  'alpha 945 beta 946 gamma 947 delta 948 epsilon 949 zeta 950 eta 951 theta 952 iota 953 kappa 954 ' +
  'lambda 955 mu 956 nu 957 xi 958 omicron 959 pi 960 rho 961 sigmaf 962 sigma 963 tau 964 ' +
  'upsilon 965 phi 966 chi 967 psi 968 omega 969 thetasym 977 upsih 978 piv 982 ensp 8194 emsp 8195 ' +
  'thinsp 8201 zwnj 8204 zwj 8205 lrm 8206 rlm 8207 ndash 8211 mdash 8212 lsquo 8216 rsquo 8217 ' +
  'sbquo 8218 ldquo 8220 rdquo 8221 bdquo 8222 dagger 8224 Dagger 8225 bull 8226 hellip 8230 ' +
  'permil 8240 prime 8242 Prime 8243 lsaquo 8249 rsaquo 8250 oline 8254 frasl 8260 euro 8364 ' +
  'image 8465 weierp 8472 real 8476 trade 8482 alefsym 8501 larr 8592 uarr 8593 rarr 8594 darr 8595 ' +
  'harr 8596 crarr 8629 lArr 8656 uArr 8657 rArr 8658 dArr 8659 hArr 8660 forall 8704 part 8706 ' +
  'exist 8707 empty 8709 nabla 8711 isin 8712 notin 8713 ni 8715 prod 8719 sum 8721 minus 8722 ' +
  'lowast 8727 radic 8730 prop 8733 infin 8734 ang 8736 and 8743 or 8744 cap 8745 cup 8746 int 8747 ' +
  'there4 8756 sim 8764 cong 8773 asymp 8776 ne 8800 equiv 8801 le 8804 ge 8805 sub 8834 sup 8835 ' +
  'nsub 8836 sube 8838 supe 8839 oplus 8853 otimes 8855 perp 8869 sdot 8901 lceil 8968 rceil 8969 ' +
  'lfloor 8970 rfloor 8971 lang 9001 rang 9002 loz 9674 spades 9824 clubs 9827 hearts 9829 ' +
  'diams 9830 ';

let named: Map<string, string> | null = null;
function namedEntities(): Map<string, string> {
  if (named) return named;
  named = new Map();
  const t = NAMED_TABLE.trim().split(' ');
  for (let i = 0; i < t.length; i += 2) named.set(t[i], String.fromCodePoint(Number(t[i + 1])));
  return named;
}

/**
 * Decode `&name;`, `&#N;` and `&#xH;` once (so `&amp;lt;` becomes `&lt;`, as a browser shows it).
 * Numeric references to 0, surrogates or beyond U+10FFFF become U+FFFD, as in HTML.
 */
export function decodeEntities(text: string): string {
  if (!text.includes('&')) return text;
  const table = namedEntities();
  return text.replace(ENTITY, (m, body: string) => {
    if (body[0] !== '#') return table.get(body) ?? m;
    const cp = body[1] === 'x' || body[1] === 'X' ? parseInt(body.slice(2), 16) : parseInt(body.slice(1), 10);
    if (cp === 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return '\uFFFD';
    return String.fromCodePoint(cp);
  });
}

/** Runs of whitespace (JavaScript's \s: includes U+00A0 and the Unicode spaces) -> one space, trimmed. */
export function normalizeSpace(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

/** Clean one text; options left out take their CLEAN_DEFAULT value. */
export function cleanText(text: string, opts: CleanOptions = {}): string {
  const o = { ...CLEAN_DEFAULT, ...opts };
  let s = text;
  if (o.stripTags) s = o.spaceBlocks ? s.replace(TAG, (t) => (BLOCK_TAG.test(t) ? ' ' : '')) : s.replace(TAG, '');
  if (o.stripUrls) s = s.replace(URL, '');
  if (o.decodeEntities) s = decodeEntities(s);
  if (o.normalizeSpace) s = normalizeSpace(s);
  return s;
}

/** The retrieval query for a question: `question + " " + body`, cleaned as one text (the original's layout). */
export function queryText(q: { question: string; body?: string | null }, opts: CleanOptions = {}): string {
  return cleanText(`${q.question} ${q.body ?? ''}`, opts);
}
