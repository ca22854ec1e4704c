/*  vdgx_tok.cc - the toolkit tokenizer (see vdgx_tok.h): an extern "C" shim over the
    SentencePiece C++ API plus prompt cleaning, done on code points.
*/
#include "vdgx_tok.h"

#include <sentencepiece_processor.h>

#include <cassert>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <sys/stat.h>
#include <vector>

struct _vdgx_tok_t {
    sentencepiece::SentencePieceProcessor sp;
    vdgx_tok_opts_t opts;
    std::string name;
    int bos, eos, pad;
};

namespace {

const size_t s_max_codepoints = 65536;

//  ---------------------------------------------------------------------------------------
//  UTF-8 <-> code points

std::u32string
s_decode_utf8 (const char *text)
{
    std::u32string out;
    const unsigned char *p = (const unsigned char *) text;
    while (*p) {
        unsigned c = *p;
        int extra = c < 0x80? 0: (c >> 5) == 6? 1: (c >> 4) == 14? 2: (c >> 3) == 30? 3: -1;
        if (extra < 0) {
            out.push_back (0xFFFD);
            p++;
            continue;
        }
        char32_t cp = extra == 0? c: extra == 1? (c & 0x1F): extra == 2? (c & 0x0F): (c & 0x07);
        int i = 1;
        for (; i <= extra; i++) {
            if ((p [i] & 0xC0) != 0x80)
                break;
            cp = (cp << 6) | (p [i] & 0x3F);
        }
        //  Truncated, overlong, surrogate or out-of-range sequences are invalid.
        static const char32_t min_for [4] = { 0, 0x80, 0x800, 0x10000 };
        if (i <= extra || cp < min_for [extra] || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) {
            out.push_back (0xFFFD);
            p++;
            continue;
        }
        out.push_back (cp);
        p += extra + 1;
    }
    return out;
}

std::string
s_encode_utf8 (const std::u32string &s)
{
    std::string out;
    out.reserve (s.size ());
    for (char32_t c : s) {
        if (c < 0x80)
            out.push_back ((char) c);
        else
        if (c < 0x800) {
            out.push_back ((char) (0xC0 | (c >> 6)));
            out.push_back ((char) (0x80 | (c & 0x3F)));
        }
        else
        if (c < 0x10000) {
            out.push_back ((char) (0xE0 | (c >> 12)));
            out.push_back ((char) (0x80 | ((c >> 6) & 0x3F)));
            out.push_back ((char) (0x80 | (c & 0x3F)));
        }
        else {
            out.push_back ((char) (0xF0 | (c >> 18)));
            out.push_back ((char) (0x80 | ((c >> 12) & 0x3F)));
            out.push_back ((char) (0x80 | ((c >> 6) & 0x3F)));
            out.push_back ((char) (0x80 | (c & 0x3F)));
        }
    }
    return out;
}

//  ---------------------------------------------------------------------------------------
//  Character classes

//  Unicode White_Space: what the `regex` module's \s matches in the official whitespace_clean.
bool
s_is_white_space (char32_t c)
{
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680
        || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F
        || c == 0x205F || c == 0x3000;
}

//  Python's str.isspace (what str.strip removes): White_Space plus the separators 0x1C-0x1F.
bool
s_is_py_space (char32_t c)
{
    return s_is_white_space (c) || (c >= 0x1C && c <= 0x1F);
}

//  windows-1252 for 0x80-0x9F (0 where the byte is undefined): used by html.unescape for
//  &#128;..&#159; and by ftfy's fix_c1_controls.
const char32_t s_cp1252 [32] = {
    0x20AC, 0, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
    0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0, 0x017D, 0,
    0, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
    0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0, 0x017E, 0x0178 };

//  ---------------------------------------------------------------------------------------
//  Named character references

struct s_entity_t {
    const char *name;
    char32_t cp;
};

//  Latin-1 names for U+00A0..U+00FF in order: every one also exists without ';' (legacy).
const char *s_latin1 [96] = {
    "nbsp", "iexcl", "cent", "pound", "curren", "yen", "brvbar", "sect", "uml", "copy",
    "ordf", "laquo", "not", "shy", "reg", "macr", "deg", "plusmn", "sup2", "sup3", "acute",
    "micro", "para", "middot", "cedil", "sup1", "ordm", "raquo", "frac14", "frac12", "frac34",
    "iquest", "Agrave", "Aacute", "Acirc", "Atilde", "Auml", "Aring", "AElig", "Ccedil",
    "Egrave", "Eacute", "Ecirc", "Euml", "Igrave", "Iacute", "Icirc", "Iuml", "ETH", "Ntilde",
    "Ograve", "Oacute", "Ocirc", "Otilde", "Ouml", "times", "Oslash", "Ugrave", "Uacute",
    "Ucirc", "Uuml", "Yacute", "THORN", "szlig", "agrave", "aacute", "acirc", "atilde", "auml",
    "aring", "aelig", "ccedil", "egrave", "eacute", "ecirc", "euml", "igrave", "iacute",
    "icirc", "iuml", "eth", "ntilde", "ograve", "oacute", "ocirc", "otilde", "ouml", "divide",
    "oslash", "ugrave", "uacute", "ucirc", "uuml", "yacute", "thorn", "yuml" };

//  The other legacy (no-semicolon) names.
const s_entity_t s_legacy [] = {
    { "amp", '&' }, { "AMP", '&' }, { "lt", '<' }, { "LT", '<' }, { "gt", '>' },
    { "GT", '>' }, { "quot", '"' }, { "QUOT", '"' }, { "COPY", 0xA9 }, { "REG", 0xAE } };

//  Semicolon-only names (a common subset of the HTML5 table).
const s_entity_t s_named [] = {
    { "apos", '\'' }, { "Tab", 0x09 }, { "NewLine", 0x0A }, { "excl", '!' }, { "num", '#' },
    { "dollar", '$' }, { "percnt", '%' }, { "lpar", '(' }, { "rpar", ')' }, { "ast", '*' },
    { "plus", '+' }, { "comma", ',' }, { "period", '.' }, { "sol", '/' }, { "colon", ':' },
    { "semi", ';' }, { "equals", '=' }, { "quest", '?' }, { "commat", '@' }, { "lsqb", '[' },
    { "lbrack", '[' }, { "bsol", '\\' }, { "rsqb", ']' }, { "rbrack", ']' }, { "Hat", '^' },
    { "lowbar", '_' }, { "grave", '`' }, { "lcub", '{' }, { "lbrace", '{' }, { "verbar", '|' },
    { "vert", '|' }, { "rcub", '}' }, { "rbrace", '}' }, { "NonBreakingSpace", 0xA0 },
    { "OElig", 0x152 }, { "oelig", 0x153 }, { "Scaron", 0x160 }, { "scaron", 0x161 },
    { "Yuml", 0x178 }, { "fnof", 0x192 }, { "circ", 0x2C6 }, { "tilde", 0x2DC },
    { "ensp", 0x2002 }, { "emsp", 0x2003 }, { "thinsp", 0x2009 }, { "zwnj", 0x200C },
    { "zwj", 0x200D }, { "lrm", 0x200E }, { "rlm", 0x200F }, { "hyphen", 0x2010 },
    { "dash", 0x2010 }, { "ndash", 0x2013 }, { "mdash", 0x2014 }, { "horbar", 0x2015 },
    { "Verbar", 0x2016 }, { "lsquo", 0x2018 }, { "rsquo", 0x2019 }, { "rsquor", 0x2019 },
    { "sbquo", 0x201A }, { "ldquo", 0x201C }, { "rdquo", 0x201D }, { "rdquor", 0x201D },
    { "bdquo", 0x201E }, { "dagger", 0x2020 }, { "Dagger", 0x2021 }, { "ddagger", 0x2021 },
    { "bull", 0x2022 }, { "bullet", 0x2022 }, { "nldr", 0x2025 }, { "hellip", 0x2026 },
    { "mldr", 0x2026 }, { "permil", 0x2030 }, { "prime", 0x2032 }, { "Prime", 0x2033 },
    { "lsaquo", 0x2039 }, { "rsaquo", 0x203A }, { "oline", 0x203E }, { "frasl", 0x2044 },
    { "euro", 0x20AC }, { "image", 0x2111 }, { "weierp", 0x2118 }, { "real", 0x211C },
    { "trade", 0x2122 }, { "TRADE", 0x2122 }, { "alefsym", 0x2135 }, { "larr", 0x2190 },
    { "uarr", 0x2191 }, { "rarr", 0x2192 }, { "darr", 0x2193 }, { "harr", 0x2194 },
    { "crarr", 0x21B5 }, { "lArr", 0x21D0 }, { "uArr", 0x21D1 }, { "rArr", 0x21D2 },
    { "dArr", 0x21D3 }, { "hArr", 0x21D4 }, { "forall", 0x2200 }, { "part", 0x2202 },
    { "exist", 0x2203 }, { "empty", 0x2205 }, { "nabla", 0x2207 }, { "isin", 0x2208 },
    { "notin", 0x2209 }, { "ni", 0x220B }, { "prod", 0x220F }, { "sum", 0x2211 },
    { "minus", 0x2212 }, { "lowast", 0x2217 }, { "radic", 0x221A }, { "prop", 0x221D },
    { "infin", 0x221E }, { "ang", 0x2220 }, { "and", 0x2227 }, { "or", 0x2228 },
    { "cap", 0x2229 }, { "cup", 0x222A }, { "int", 0x222B }, { "there4", 0x2234 },
    { "sim", 0x223C }, { "cong", 0x2245 }, { "asymp", 0x2248 }, { "ne", 0x2260 },
    { "equiv", 0x2261 }, { "le", 0x2264 }, { "ge", 0x2265 }, { "sub", 0x2282 },
    { "sup", 0x2283 }, { "nsub", 0x2284 }, { "sube", 0x2286 }, { "supe", 0x2287 },
    { "oplus", 0x2295 }, { "otimes", 0x2297 }, { "perp", 0x22A5 }, { "sdot", 0x22C5 },
    { "lceil", 0x2308 }, { "rceil", 0x2309 }, { "lfloor", 0x230A }, { "rfloor", 0x230B },
    { "lang", 0x27E8 }, { "rang", 0x27E9 }, { "loz", 0x25CA }, { "spades", 0x2660 },
    { "clubs", 0x2663 }, { "hearts", 0x2665 }, { "diams", 0x2666 }, { "check", 0x2713 },
    { "cross", 0x2717 }, { "star", 0x2606 }, { "starf", 0x2605 }, { "half", 0xBD },
    { "centerdot", 0xB7 }, { "die", 0xA8 }, { "Dot", 0xA8 }, { "circledR", 0xAE },
    { "pm", 0xB1 }, { "div", 0xF7 }, { "angst", 0xC5 }, { "ohm", 0x3A9 },
    { "Alpha", 0x391 }, { "Beta", 0x392 }, { "Gamma", 0x393 }, { "Delta", 0x394 },
    { "Epsilon", 0x395 }, { "Zeta", 0x396 }, { "Eta", 0x397 }, { "Theta", 0x398 },
    { "Iota", 0x399 }, { "Kappa", 0x39A }, { "Lambda", 0x39B }, { "Mu", 0x39C },
    { "Nu", 0x39D }, { "Xi", 0x39E }, { "Omicron", 0x39F }, { "Pi", 0x3A0 }, { "Rho", 0x3A1 },
    { "Sigma", 0x3A3 }, { "Tau", 0x3A4 }, { "Upsilon", 0x3A5 }, { "Phi", 0x3A6 },
    { "Chi", 0x3A7 }, { "Psi", 0x3A8 }, { "Omega", 0x3A9 }, { "alpha", 0x3B1 },
    { "beta", 0x3B2 }, { "gamma", 0x3B3 }, { "delta", 0x3B4 }, { "epsilon", 0x3B5 },
    { "epsi", 0x3B5 }, { "zeta", 0x3B6 }, { "eta", 0x3B7 }, { "theta", 0x3B8 },
    { "iota", 0x3B9 }, { "kappa", 0x3BA }, { "lambda", 0x3BB }, { "mu", 0x3BC },
    { "nu", 0x3BD }, { "xi", 0x3BE }, { "omicron", 0x3BF }, { "pi", 0x3C0 }, { "rho", 0x3C1 },
    { "sigmaf", 0x3C2 }, { "sigma", 0x3C3 }, { "tau", 0x3C4 }, { "upsilon", 0x3C5 },
    { "phi", 0x3C6 }, { "chi", 0x3C7 }, { "psi", 0x3C8 }, { "omega", 0x3C9 },
    { "thetasym", 0x3D1 }, { "upsih", 0x3D2 }, { "piv", 0x3D6 } };

bool
s_equals (const std::u32string &s, size_t pos, size_t len, const char *name)
{
    size_t n = strlen (name);
    if (n != len)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s [pos + i] != (char32_t) (unsigned char) name [i])
            return false;
    return true;
}

//  Code point of a legacy name (usable without ';') at s[pos, pos+len), 0 if none.
char32_t
s_lookup_legacy (const std::u32string &s, size_t pos, size_t len)
{
    for (int i = 0; i < 96; i++)
        if (s_equals (s, pos, len, s_latin1 [i]))
            return 0xA0 + i;
    for (const s_entity_t &e : s_legacy)
        if (s_equals (s, pos, len, e.name))
            return e.cp;
    return 0;
}

//  Code point of any name (with its ';'), 0 if none.
char32_t
s_lookup_named (const std::u32string &s, size_t pos, size_t len)
{
    char32_t cp = s_lookup_legacy (s, pos, len);
    if (cp)
        return cp;
    for (const s_entity_t &e : s_named)
        if (s_equals (s, pos, len, e.name))
            return e.cp;
    return 0;
}

bool
s_is_digit (char32_t c)
{
    return c >= '0' && c <= '9';
}

bool
s_is_hex (char32_t c)
{
    return s_is_digit (c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

bool
s_is_alnum (char32_t c)
{
    return s_is_digit (c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

//  Python's html._replace_charref for a number: appends the result (possibly nothing).
void
s_append_charref (std::u32string &out, unsigned long num)
{
    if (num == 0) {
        out.push_back (0xFFFD);
        return;
    }
    if (num == 0x0D) {
        out.push_back ('\r');
        return;
    }
    if (num >= 0x80 && num <= 0x9F) {
        char32_t c = s_cp1252 [num - 0x80];
        out.push_back (c? c: (char32_t) num);
        return;
    }
    if ((num >= 0xD800 && num <= 0xDFFF) || num > 0x10FFFF) {
        out.push_back (0xFFFD);
        return;
    }
    //  Python drops these "invalid codepoints".
    if ((num >= 0x1 && num <= 0x8) || num == 0xB || (num >= 0xE && num <= 0x1F)
     || (num >= 0x7F && num <= 0x9F) || (num >= 0xFDD0 && num <= 0xFDEF)
     || (num & 0xFFFE) == 0xFFFE)
        return;
    out.push_back ((char32_t) num);
}

//  Parses the digits of s[pos, end) in base; saturates (anything past 0x10FFFF is out of range).
unsigned long
s_parse_number (const std::u32string &s, size_t pos, size_t end, int base)
{
    unsigned long v = 0;
    for (size_t i = pos; i < end; i++) {
        char32_t c = s [i];
        unsigned d = s_is_digit (c)? c - '0': (c | 0x20) - 'a' + 10;
        v = v * base + d;
        if (v > 0x110000)
            v = 0x110000;
    }
    return v;
}

//  One html.unescape pass with Python's rules. semicolon_only = ftfy's entity pass, which only
//  replaces &name; / &#N; / &#xH; of alphanumerics that end in ';'.
std::u32string
s_unescape (const std::u32string &s, bool semicolon_only)
{
    std::u32string out;
    out.reserve (s.size ());
    size_t i = 0, n = s.size ();
    while (i < n) {
        if (s [i] != '&' || i + 1 >= n) {
            out.push_back (s [i++]);
            continue;
        }
        size_t p = i + 1;
        if (s [p] == '#') {
            size_t q = p + 1;
            int base = 10;
            if (q < n && (s [q] == 'x' || s [q] == 'X') && q + 1 < n && s_is_hex (s [q + 1])) {
                base = 16;
                q++;
            }
            size_t d = q;
            while (d < n && (base == 16? s_is_hex (s [d]): s_is_digit (s [d])))
                d++;
            bool semi = d < n && s [d] == ';';
            if (d == q || (semicolon_only && !semi)) {
                out.push_back (s [i++]);
                continue;
            }
            s_append_charref (out, s_parse_number (s, q, d, base));
            i = semi? d + 1: d;
            continue;
        }
        //  Name: up to 32 code points of anything but \t \n \f space < & # ;, then ';'?
        size_t e = p;
        while (e < n && e - p < 32 && s [e] != '\t' && s [e] != '\n' && s [e] != '\f'
            && s [e] != ' ' && s [e] != '<' && s [e] != '&' && s [e] != '#' && s [e] != ';')
            e++;
        if (e == p) {
            out.push_back (s [i++]);
            continue;
        }
        bool semi = e < n && s [e] == ';';
        size_t len = e - p;
        if (semicolon_only) {
            bool alnum = true;
            for (size_t k = p; k < e; k++)
                alnum = alnum && s_is_alnum (s [k]);
            char32_t cp = (semi && alnum)? s_lookup_named (s, p, len): 0;
            if (cp) {
                out.push_back (cp);
                i = e + 1;
            }
            else
                out.push_back (s [i++]);
            continue;
        }
        //  Exact match first (with ';' any name, without it only legacy names), then the
        //  longest legacy prefix of at least two characters, the rest kept as text.
        char32_t cp = semi? s_lookup_named (s, p, len): s_lookup_legacy (s, p, len);
        if (cp) {
            out.push_back (cp);
            i = semi? e + 1: e;
            continue;
        }
        size_t total = len + (semi? 1: 0);     //  Python's s includes the ';'
        bool done = false;
        for (size_t x = total - 1; x >= 2 && !done; x--) {
            if (x > len)
                continue;
            cp = s_lookup_legacy (s, p, x);
            if (cp) {
                out.push_back (cp);
                i = p + x;
                done = true;
            }
        }
        if (!done)
            out.push_back (s [i++]);
    }
    return out;
}

//  The part of ftfy.fix_text this tokenizer reproduces (see vdgx_tok.h).
std::u32string
s_ftfy_lite (const std::u32string &text)
{
    //  ftfy's order: unescape_html="auto" first (text with '<' is taken to be HTML and left
    //  alone), then the character fixes.
    std::u32string s = text.find ('<') == std::u32string::npos? s_unescape (text, true): text;
    std::u32string out;
    out.reserve (s.size ());
    size_t n = s.size ();
    for (size_t i = 0; i < n; i++) {
        char32_t c = s [i];
        //  remove_terminal_escapes: ESC [ params letter
        if (c == 0x1B && i + 1 < n && s [i + 1] == '[') {
            size_t j = i + 2;
            while (j < n && ((s [j] >= '0' && s [j] <= '9') || s [j] == ';'))
                j++;
            if (j < n && ((s [j] >= 'A' && s [j] <= 'Z') || (s [j] >= 'a' && s [j] <= 'z'))) {
                i = j;
                continue;
            }
        }
        //  fix_c1_controls: C1 controls were windows-1252 bytes.
        if (c >= 0x80 && c <= 0x9F && s_cp1252 [c - 0x80])
            c = s_cp1252 [c - 0x80];
        //  uncurl_quotes
        if (c == 0x02BC || (c >= 0x2018 && c <= 0x201B))
            c = '\'';
        else
        if (c >= 0x201C && c <= 0x201F)
            c = '"';
        //  remove_control_chars (tab, newline, form feed and CR stay)
        if ((c <= 0x08) || c == 0x0B || (c >= 0x0E && c <= 0x1F) || c == 0x7F
         || (c >= 0x206A && c <= 0x206F) || c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFC)
         || (c >= 0x1D173 && c <= 0x1D17A) || (c >= 0xE0000 && c <= 0xE007F))
            continue;
        out.push_back (c);
    }
    return out;
}

std::u32string
s_strip (const std::u32string &s)
{
    size_t b = 0, e = s.size ();
    while (b < e && s_is_py_space (s [b]))
        b++;
    while (e > b && s_is_py_space (s [e - 1]))
        e--;
    return s.substr (b, e - b);
}

std::u32string
s_clean (const char *text)
{
    std::u32string s = s_decode_utf8 (text);
    if (s.size () > s_max_codepoints) {
        size_t cut = s_max_codepoints;
        while (cut < s.size () && cut < 2 * s_max_codepoints && !s_is_white_space (s [cut]))
            cut++;
        s.resize (cut);
    }
    s = s_ftfy_lite (s);
    s = s_strip (s_unescape (s_unescape (s, false), false));
    std::u32string out;
    out.reserve (s.size ());
    for (size_t i = 0; i < s.size (); i++) {
        if (s_is_white_space (s [i])) {
            while (i + 1 < s.size () && s_is_white_space (s [i + 1]))
                i++;
            out.push_back (' ');
        }
        else
            out.push_back (s [i]);
    }
    return s_strip (out);
}

char *
s_strdup_err (const std::string &msg)
{
    return strdup (msg.c_str ());
}

}   //  namespace

extern "C" char *
vdgx_tok_clean (const char *text)
{
    assert (text);
    return strdup (s_encode_utf8 (s_clean (text)).c_str ());
}

extern "C" vdgx_tok_opts_t
vdgx_tok_opts_t5 (const char *name)
{
    vdgx_tok_opts_t opts;
    memset (&opts, 0, sizeof (opts));
    opts.name = name;
    opts.clean = VDGX_TOK_CLEAN_WHITESPACE;
    opts.add_eos = true;
    opts.pad_side = VDGX_TOK_PAD_RIGHT;
    opts.bos_id = opts.eos_id = opts.pad_id = -1;
    return opts;
}

extern "C" vdgx_tok_t *
vdgx_tok_new (const char *path, const vdgx_tok_opts_t *opts, char **err)
{
    assert (path && opts && err);
    *err = NULL;
    std::string who = opts->name? opts->name: "tokenizer";
    std::string file = path;
    struct stat st;
    if (stat (path, &st) != 0) {
        *err = s_strdup_err (who + ": '" + file + "' does not exist");
        return NULL;
    }
    if (S_ISDIR (st.st_mode)) {
        static const char *const s_default_files [] = { "spiece.model", "tokenizer.model", NULL };
        const char *const *files = opts->files? opts->files: s_default_files;
        bool found = false;
        for (size_t i = 0; files [i] && !found; i++) {
            file = std::string (path) + "/" + files [i];
            found = stat (file.c_str (), &st) == 0 && S_ISREG (st.st_mode);
        }
        if (!found) {
            std::string json = std::string (path) + "/tokenizer.json";
            *err = s_strdup_err (stat (json.c_str (), &st) == 0
                ? who + ": '" + std::string (path) + "' has only tokenizer.json; "
                  "the SentencePiece model (" + files [0] + ") is needed"
                : who + ": no " + files [0] + " in '" + std::string (path) + "'");
            return NULL;
        }
    }
    vdgx_tok_t *self = new (std::nothrow) _vdgx_tok_t;
    if (!self) {
        *err = strdup ("out of memory");
        return NULL;
    }
    self->opts = *opts;
    self->opts.name = NULL;
    self->opts.files = NULL;
    self->name = who;
    sentencepiece::util::Status status = self->sp.Load (file);
    if (!status.ok ()) {
        *err = s_strdup_err (who + ": cannot load '" + file + "': " + status.ToString ());
        delete self;
        return NULL;
    }
    //  T5 convention: pad 0, eos 1 (HF T5Tokenizer), unless the model or the options say otherwise.
    self->eos = opts->eos_id >= 0? opts->eos_id: self->sp.eos_id () >= 0? self->sp.eos_id (): 1;
    self->pad = opts->pad_id >= 0? opts->pad_id: self->sp.pad_id () >= 0? self->sp.pad_id (): 0;
    self->bos = opts->bos_id >= 0? opts->bos_id: self->sp.bos_id ();
    int size = self->sp.GetPieceSize ();
    if (self->eos >= size || self->pad >= size || self->bos >= size || (opts->add_bos && self->bos < 0)) {
        *err = s_strdup_err (who + ": '" + file + "' has no " + (opts->add_bos? "BOS/": "") + "EOS/PAD pieces");
        delete self;
        return NULL;
    }
    return self;
}

extern "C" void
vdgx_tok_destroy (vdgx_tok_t **self_p)
{
    assert (self_p);
    delete *self_p;
    *self_p = NULL;
}

extern "C" int
vdgx_tok_vocab_size (vdgx_tok_t *self)
{
    assert (self);
    return self->sp.GetPieceSize ();
}

extern "C" int
vdgx_tok_eos_id (vdgx_tok_t *self)
{
    assert (self);
    return self->eos;
}

extern "C" int
vdgx_tok_pad_id (vdgx_tok_t *self)
{
    assert (self);
    return self->pad;
}

extern "C" int
vdgx_tok_bos_id (vdgx_tok_t *self)
{
    assert (self);
    return self->bos;
}

extern "C" int
vdgx_tok_encode (vdgx_tok_t *self, const char *text, int max_len, int32_t *ids,
                 uint8_t *mask, char **err)
{
    assert (self && text && ids && max_len >= 1);
    if (err)
        *err = NULL;
    const vdgx_tok_opts_t *o = &self->opts;
    std::u32string cleaned = o->clean == VDGX_TOK_CLEAN_WHITESPACE? s_clean (text): s_decode_utf8 (text);
    if (o->clean == VDGX_TOK_CLEAN_STRIP) {
        size_t b = 0, e = cleaned.size ();
        while (b < e && s_is_py_space (cleaned [b]))
            b++;
        while (e > b && s_is_py_space (cleaned [e - 1]))
            e--;
        cleaned = cleaned.substr (b, e - b);
    }
    if (o->lowercase)
        for (char32_t &c : cleaned)
            if (c < 128)
                c = (char32_t) tolower ((int) c);
    std::vector<int> pieces;
    sentencepiece::util::Status status = self->sp.Encode (s_encode_utf8 (cleaned), &pieces);
    if (!status.ok ()) {
        if (err)
            *err = s_strdup_err (self->name + ": " + status.ToString ());
        return -1;
    }
    //  HF truncation keeps room for the special tokens it adds.
    int specials = (o->add_bos? 1: 0) + (o->add_eos? 1: 0);
    if (specials > max_len) {
        if (err)
            *err = s_strdup_err (self->name + ": max_len " + std::to_string (max_len)
                                 + " leaves no room for the special tokens");
        return -1;
    }
    int n = (int) pieces.size ();
    if (n > max_len - specials)
        n = max_len - specials;
    std::vector<int32_t> real;
    if (o->add_bos)
        real.push_back (self->bos);
    real.insert (real.end (), pieces.begin (), pieces.begin () + n);
    if (o->add_eos)
        real.push_back (self->eos);
    int count = (int) real.size ();
    int first = o->pad_side == VDGX_TOK_PAD_LEFT? max_len - count: 0;
    for (int i = 0; i < max_len; i++) {
        bool is_real = i >= first && i < first + count;
        ids [i] = is_real? real [(size_t) (i - first)]: self->pad;
        if (mask)
            mask [i] = is_real;
    }
    return count;
}

extern "C" char *
vdgx_tok_decode (vdgx_tok_t *self, const int32_t *ids, int n)
{
    assert (self && (ids || n == 0));
    std::vector<int> v;
    for (int i = 0; i < n; i++)
        if (ids [i] >= 0 && ids [i] < self->sp.GetPieceSize ())
            v.push_back (ids [i]);
    std::string text;
    if (!self->sp.Decode (v, &text).ok ())
        return NULL;
    return strdup (text.c_str ());
}

//  ---------------------------------------------------------------------------------------
//  Selftest

#include <dirent.h>
#include <unistd.h>

namespace {

//  Removes a flat temporary directory and its files.
void
s_remove_dir (const std::string &dir)
{
    DIR *d = opendir (dir.c_str ());
    if (d) {
        struct dirent *e;
        while ((e = readdir (d)) != NULL)
            if (strcmp (e->d_name, ".") && strcmp (e->d_name, ".."))
                unlink ((dir + "/" + e->d_name).c_str ());
        closedir (d);
    }
    rmdir (dir.c_str ());
}

void
s_check_clean (const char *in, const char *want, bool verbose)
{
    char *got = vdgx_tok_clean (in);
    if (verbose || strcmp (got, want))
        printf ("  clean [%s] -> [%s]%s\n", in, got, strcmp (got, want)? " MISMATCH": "");
    assert (strcmp (got, want) == 0);
    free (got);
}

}   //  namespace

extern "C" void
vdgx_tok_test (bool verbose)
{
    printf (" * vdgx_tok: ");
    if (verbose)
        printf ("\n");
    //  Expected values: Python's html.unescape twice + strip + \s+ collapse (checked against
    //  CPython), and ftfy's entity pass / quote uncurling where noted.
    s_check_clean ("  a cat\t\n  on   a mat  ", "a cat on a mat", verbose);
    s_check_clean ("Tom &amp; Jerry", "Tom & Jerry", verbose);
    s_check_clean ("&amp;lt;b&amp;gt;", "<b>", verbose);
    s_check_clean ("&lt;p&gt;x", "<p>x", verbose);
    s_check_clean ("&#65;&#x42;&#X43&#68", "ABCD", verbose);
    s_check_clean ("&#128;&#150;&#0;&#x110000;&#xD800;",
                   "\xE2\x82\xAC\xE2\x80\x93\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD", verbose);
    s_check_clean ("&#1;a&#xFFFE;b&#x1FFFF;c", "abc", verbose);
    s_check_clean ("&notit; &copy2024 &ampx &amp", "\xC2\xACit; \xC2\xA9" "2024 &x &", verbose);
    s_check_clean ("&bogus; & x &#; &#xZ", "&bogus; & x &#; &#xZ", verbose);
    s_check_clean ("a\xE3\x80\x80" "b\xC2\xA0" "c\xE2\x80\x89" "d\xE2\x80\x8B" "e",
                   "a b c d\xE2\x80\x8B" "e", verbose);
    s_check_clean ("&nbsp;lead and trail&nbsp;", "lead and trail", verbose);
    s_check_clean ("caf&eacute; na&iuml;ve &Eacute;t&eacute;",
                   "caf\xC3\xA9 na\xC3\xAFve \xC3\x89t\xC3\xA9", verbose);
    s_check_clean ("&hellip;&mdash;&euro;&trade;",
                   "\xE2\x80\xA6\xE2\x80\x94\xE2\x82\xAC\xE2\x84\xA2", verbose);
    s_check_clean ("&AMP;&LT;&QUOT;&COPY", "&<\"\xC2\xA9", verbose);
    s_check_clean ("x&#13;y", "x y", verbose);
    s_check_clean ("&#x41;&#x;", "A&#x;", verbose);
    //  ftfy: a third, semicolon-only entity pass when the text has no '<' ...
    s_check_clean ("&amp;amp;amp;", "&", verbose);
    s_check_clean ("<i>&amp;amp;amp;", "<i>&amp;", verbose);
    //  ... straight quotes, terminal escapes and control characters removed.
    s_check_clean ("\xE2\x80\x9Cquoted\xE2\x80\x9D \xE2\x80\x98x\xE2\x80\x99", "\"quoted\" 'x'", verbose);
    s_check_clean ("\x1B[1;31mred\x1B[0m text\x01\x7F", "red text", verbose);
    s_check_clean ("&ldquo;hi&rdquo;", "\"hi\"", verbose);
    //  Invalid UTF-8 becomes U+FFFD; empty and all-space prompts clean to "".
    s_check_clean ("a\xFF" "b\xC0\xAF", "a\xEF\xBF\xBD" "b\xEF\xBF\xBD\xEF\xBF\xBD", verbose);
    s_check_clean (" \t\n ", "", verbose);
    s_check_clean ("", "", verbose);

    char *err = NULL;
    static const char *const wan_files [] = { "spiece.model", "google/umt5-xxl/spiece.model", NULL };
    vdgx_tok_opts_t opts = vdgx_tok_opts_t5 ("umT5 tokenizer");
    opts.files = wan_files;
    vdgx_tok_t *tok = vdgx_tok_new ("/nonexistent/spiece.model", &opts, &err);
    assert (!tok && err && strstr (err, "does not exist"));
    free (err);

    char tmpl [] = "/tmp/vdgx_tok_XXXXXX";
    char *dir = mkdtemp (tmpl);
    assert (dir);
    std::string d = dir;
    //  A directory without spiece.model, then one with only tokenizer.json, then junk.
    tok = vdgx_tok_new (dir, &opts, &err);
    assert (!tok && err && strstr (err, "no spiece.model"));
    free (err);
    FILE *f = fopen ((d + "/tokenizer.json").c_str (), "w");
    assert (f);
    fputs ("{}", f);
    fclose (f);
    tok = vdgx_tok_new (dir, &opts, &err);
    assert (!tok && err && strstr (err, "only tokenizer.json"));
    free (err);
    f = fopen ((d + "/spiece.model").c_str (), "wb");
    assert (f);
    for (int i = 0; i < 1000; i++)
        fputc ((i * 7919) & 0xFF, f);
    fclose (f);
    tok = vdgx_tok_new (dir, &opts, &err);
    assert (!tok && err && strstr (err, "cannot load"));
    free (err);
    unlink ((d + "/spiece.model").c_str ());

    //  A small unigram model trained here with the T5 special ids.
    if (access ("/usr/bin/spm_train", X_OK) != 0 && system ("command -v spm_train >/dev/null 2>&1") != 0) {
        printf ("(spm_train missing: model tests skipped) ");
    }
    else {
        static const char *words [] = {
            "a", "cat", "dog", "walks", "on", "the", "beach", "at", "sunset", "red", "car",
            "drives", "through", "city", "streets", "rain", "falls", "slowly", "camera",
            "pans", "left", "over", "mountains", "and", "rivers", "&", "bird", "flies",
            "above", "green", "forest", "with", "light", "fog", "night", "sky", "stars",
            "caf\xC3\xA9", "people", "dance" };
        const int nwords = (int) (sizeof (words) / sizeof (words [0]));
        f = fopen ((d + "/corpus.txt").c_str (), "w");
        assert (f);
        uint32_t rng = 12345;
        for (int line = 0; line < 3000; line++) {
            int len = 4 + line % 9;
            for (int w = 0; w < len; w++) {
                rng = rng * 1664525u + 1013904223u;
                fprintf (f, "%s%s", w? " ": "", words [(rng >> 16) % nwords]);
            }
            fputs (line % 3? ".\n": ", then more.\n", f);
        }
        fclose (f);
        std::string cmd = "spm_train --input=" + d + "/corpus.txt --model_prefix=" + d
            + "/spiece --vocab_size=120 --model_type=unigram --pad_id=0 --eos_id=1 --unk_id=2"
              " --bos_id=-1 --character_coverage=1.0 --hard_vocab_limit=false --num_threads=1"
              " --minloglevel=2 >/dev/null 2>&1";
        int rc = system (cmd.c_str ());
        assert (rc == 0);
        unlink ((d + "/spiece.vocab").c_str ());

        tok = vdgx_tok_new (dir, &opts, &err);        //  the directory form finds spiece.model
        if (!tok)
            printf ("%s\n", err);
        assert (tok && !err);
        assert (vdgx_tok_eos_id (tok) == 1 && vdgx_tok_pad_id (tok) == 0);
        assert (vdgx_tok_vocab_size (tok) > 40);

        int32_t ids [512], ids2 [512];
        uint8_t mask [512];
        int n = vdgx_tok_encode (tok, "a cat walks on the beach", 16, ids, mask, &err);
        assert (n >= 3 && n <= 16 && ids [n - 1] == 1);
        for (int i = 0; i < 16; i++) {
            assert (mask [i] == (i < n));
            if (i >= n)
                assert (ids [i] == 0);
            if (i < n - 1)
                assert (ids [i] > 2);               //  no unk/pad/eos inside the words
        }
        char *text = vdgx_tok_decode (tok, ids, n - 1);
        if (verbose)
            printf ("  %d tokens, decoded [%s]\n", n, text);
        assert (text && strcmp (text, "a cat walks on the beach") == 0);
        free (text);

        //  Cleaning happens before the model: same ids as the clean text.
        int n2 = vdgx_tok_encode (tok, "  a&nbsp;cat\n\twalks &amp;amp; the   beach ", 32, ids, NULL, &err);
        int n3 = vdgx_tok_encode (tok, "a cat walks & the beach", 32, ids2, NULL, &err);
        assert (n2 == n3 && memcmp (ids, ids2, sizeof (int32_t) * (size_t) n2) == 0);

        //  Truncation keeps max_len - 1 pieces, then EOS; the kept pieces are the prefix of
        //  the untruncated encoding.
        std::string longtext;
        for (int i = 0; i < 400; i++)
            longtext += std::string (words [i % nwords]) + " ";
        int32_t *full = (int32_t *) malloc (sizeof (int32_t) * 4096);
        int nfull = vdgx_tok_encode (tok, longtext.c_str (), 4096, full, NULL, &err);
        assert (nfull > 100);
        n = vdgx_tok_encode (tok, longtext.c_str (), 64, ids, mask, &err);
        assert (n == 64 && ids [63] == 1 && mask [63] == 1);
        assert (memcmp (ids, full, sizeof (int32_t) * 63) == 0);
        free (full);
        //  max_len 1: only EOS fits.
        n = vdgx_tok_encode (tok, "a cat", 1, ids, mask, &err);
        assert (n == 1 && ids [0] == 1 && mask [0] == 1);
        //  An empty prompt is EOS alone.
        n = vdgx_tok_encode (tok, "  ", 4, ids, mask, &err);
        assert (n == 1 && ids [0] == 1 && ids [1] == 0 && mask [1] == 0);
        vdgx_tok_destroy (&tok);
        assert (!tok);

        //  Other models' options: BOS (here the unk piece stands in for it) + EOS, left
        //  padding, no cleaning, lowercase.
        vdgx_tok_opts_t lo = opts;
        lo.add_bos = true;
        lo.bos_id = 2;
        lo.pad_side = VDGX_TOK_PAD_LEFT;
        lo.clean = VDGX_TOK_CLEAN_NONE;
        lo.lowercase = true;
        tok = vdgx_tok_new (dir, &lo, &err);
        assert (tok && vdgx_tok_bos_id (tok) == 2);
        n = vdgx_tok_encode (tok, "A CAT walks", 12, ids, mask, &err);
        n2 = vdgx_tok_encode (tok, "a cat walks", 12, ids2, NULL, &err);
        assert (n == n2 && memcmp (ids, ids2, sizeof (int32_t) * 12) == 0);
        for (int i = 0; i < 12; i++)
            assert (mask [i] == (i >= 12 - n) && (i >= 12 - n || ids [i] == 0));
        assert (ids [12 - n] == 2 && ids [11] == 1);
        //  Entities are not decoded without cleaning.
        n = vdgx_tok_encode (tok, "a&amp;b", 12, ids, NULL, &err);
        n2 = vdgx_tok_encode (tok, "a&b", 12, ids2, NULL, &err);
        assert (n != n2 || memcmp (ids, ids2, sizeof (int32_t) * 12) != 0);
        //  Strip only: leading and trailing (Unicode) spaces go, entities stay.
        lo.clean = VDGX_TOK_CLEAN_STRIP;
        vdgx_tok_t *st = vdgx_tok_new (dir, &lo, &err);
        assert (st);
        n = vdgx_tok_encode (st, " \t\xE3\x80\x80" "A CAT walks\n ", 12, ids, NULL, &err);
        n2 = vdgx_tok_encode (tok, "a cat walks", 12, ids2, NULL, &err);
        assert (n == n2 && memcmp (ids, ids2, sizeof (int32_t) * 12) == 0);
        n = vdgx_tok_encode (st, " a&amp;b ", 12, ids, NULL, &err);
        n2 = vdgx_tok_encode (tok, "a&amp;b", 12, ids2, NULL, &err);
        assert (n == n2 && memcmp (ids, ids2, sizeof (int32_t) * 12) == 0);
        vdgx_tok_destroy (&st);
        //  max_len below the specials is an error.
        assert (vdgx_tok_encode (tok, "a", 1, ids, NULL, &err) == -1 && err && strstr (err, "no room"));
        free (err);
        err = NULL;
        vdgx_tok_destroy (&tok);

        //  A Wan model folder: <dir>/google/umt5-xxl/spiece.model.
        std::string nested = d + "/google/umt5-xxl";
        rc = mkdir ((d + "/google").c_str (), 0700) || mkdir (nested.c_str (), 0700)
          || rename ((d + "/spiece.model").c_str (), (nested + "/spiece.model").c_str ());
        assert (rc == 0);
        unlink ((d + "/tokenizer.json").c_str ());
        tok = vdgx_tok_new (dir, &opts, &err);
        assert (tok && vdgx_tok_eos_id (tok) == 1);
        vdgx_tok_destroy (&tok);
        s_remove_dir (nested);
        rmdir ((d + "/google").c_str ());
    }
    s_remove_dir (d);

    //  The real umT5 tokenizer, when configured: VDGX_UMT5_TOKENIZER (google/umt5-xxl/ or
    //  its spiece.model) or VDGX_WAN21_DIR (a Wan 2.1 model folder).
    const char *real = getenv ("VDGX_UMT5_TOKENIZER");
    if (!real || !*real)
        real = getenv ("VDGX_WAN21_DIR");
    if (real && *real) {
        tok = vdgx_tok_new (real, &opts, &err);
        if (!tok)
            printf ("%s\n", err);
        assert (tok);
        assert (vdgx_tok_eos_id (tok) == 1 && vdgx_tok_pad_id (tok) == 0);
        assert (vdgx_tok_vocab_size (tok) > 250000 && vdgx_tok_vocab_size (tok) <= 256384);
        int32_t ids [512];
        int n = vdgx_tok_encode (tok, "A cat walks on the grass, realistic style.", 512, ids, NULL, &err);
        assert (n > 5 && ids [n - 1] == 1 && ids [n] == 0);
        if (verbose)
            printf ("  real umT5 tokenizer: %d pieces, %d tokens\n", vdgx_tok_vocab_size (tok), n);
        vdgx_tok_destroy (&tok);
    }
    printf ("OK\n");
}
