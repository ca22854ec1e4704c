/*  vdgx_tok.h - the toolkit's tokenizer (class vdgx_tok): a SentencePiece model (the
    sentencepiece library) with per-model options: prompt cleaning, special tokens (BOS, EOS,
    PAD), padding side, truncation.

    Cleaning VDGX_TOK_CLEAN_WHITESPACE is what HF-style T5 pipelines call clean='whitespace'
    (Wan 2.1's HuggingfaceTokenizer), in the official order:
      1. ftfy.fix_text, partially: terminal escape sequences removed, C1 controls decoded as
         windows-1252, other control characters removed, curly quotes straightened, and
         (ftfy's "auto" HTML mode) one pass of semicolon-terminated entities when the text
         has no '<'. Not done: ftfy's mojibake repair (fix_encoding) and its NFC step (the
         SentencePiece nmt_nfkc normaliser applies NFKC, which subsumes NFC).
      2. html.unescape twice: named entities (the common ones: all Latin-1 names, the legacy
         no-semicolon forms with Python's longest-prefix rule, typographic, arrows, maths,
         Greek), &#N; and &#xH; with Python's rules (windows-1252 for 0x80-0x9f, U+FFFD for
         0, surrogates and > 0x10FFFF, noncharacters dropped).
      3. strip, collapse every run of Unicode whitespace to one space, strip.
    Invalid UTF-8 bytes become U+FFFD. Text beyond 64 Ki code points is cut at a whitespace
    (it lies far past any token window).
*/
#ifndef VDGX_TOK_H_INCLUDED
#define VDGX_TOK_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    VDGX_TOK_CLEAN_NONE = 0,        //  the text as given
    VDGX_TOK_CLEAN_WHITESPACE,      //  ftfy-lite + html.unescape x2 + whitespace (see above)
    VDGX_TOK_CLEAN_STRIP            //  Python's str.strip() only (Gemma in LTX-2)
} vdgx_tok_clean_t;

typedef enum { VDGX_TOK_PAD_RIGHT = 0, VDGX_TOK_PAD_LEFT } vdgx_tok_pad_t;

typedef struct {
    const char *name;               //  for messages ("umT5 tokenizer"); NULL = "tokenizer"
    //  Model files tried, in order, inside a directory (NULL-terminated); NULL = spiece.model,
    //  tokenizer.model.
    const char *const *files;
    vdgx_tok_clean_t clean;
    bool lowercase;                 //  after cleaning
    bool add_bos, add_eos;
    vdgx_tok_pad_t pad_side;
    //  Special ids; -1 = the model's own, else the T5 convention (pad 0, eos 1, no bos).
    int bos_id, eos_id, pad_id;
} vdgx_tok_opts_t;

//  The options of a T5-family tokenizer: whitespace cleaning, EOS, right padding, model ids.
vdgx_tok_opts_t vdgx_tok_opts_t5 (const char *name);

typedef struct _vdgx_tok_t vdgx_tok_t;

//  Loads a SentencePiece model file, or the first of opts->files inside a directory.
//  NULL with *err (caller frees).
vdgx_tok_t *vdgx_tok_new (const char *path, const vdgx_tok_opts_t *opts, char **err);
void vdgx_tok_destroy (vdgx_tok_t **self_p);

int vdgx_tok_vocab_size (vdgx_tok_t *self);
int vdgx_tok_eos_id (vdgx_tok_t *self);
int vdgx_tok_pad_id (vdgx_tok_t *self);
int vdgx_tok_bos_id (vdgx_tok_t *self);     //  -1 when the model has none

//  Cleans and encodes text into ids[max_len] and mask[max_len] (mask may be NULL): [BOS]
//  pieces [EOS], the pieces truncated so that the specials fit, then pad ids with mask 0
//  after them (right padding) or before them (left padding). Returns the number of real
//  tokens (specials included), or -1 with *err (caller frees) when err is not NULL.
int vdgx_tok_encode (vdgx_tok_t *self, const char *text, int max_len, int32_t *ids,
                     uint8_t *mask, char **err);
//  Ids back to text (for tests and logs); caller frees.
char *vdgx_tok_decode (vdgx_tok_t *self, const int32_t *ids, int n);

//  VDGX_TOK_CLEAN_WHITESPACE alone (UTF-8 in and out); caller frees.
char *vdgx_tok_clean (const char *text);

void vdgx_tok_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
