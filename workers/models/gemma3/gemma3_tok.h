/*  gemma3_tok.h - Gemma's tokenizer conventions for the toolkit tokenizer (vdgx_tok): the
    SentencePiece model tokenizer.model through the sentencepiece library, the text stripped of
    leading and trailing whitespace (Python's str.strip), BOS (the model's bos id, 2 for Gemma)
    first, no EOS, truncation to max_len tokens (BOS included), then the model's pad id (0) on
    the left, as LTX-2 pads its prompts (set pad_side for the other side).
*/
#ifndef GEMMA3_TOK_H_INCLUDED
#define GEMMA3_TOK_H_INCLUDED

#include <stdbool.h>
#include "vdgx_tok.h"

#ifdef __cplusplus
extern "C" {
#endif

//  The options: vdgx_tok_new (path, &opts, &err) with path tokenizer.model or its directory.
vdgx_tok_opts_t gemma3_tok_opts (void);

//  Trains a tiny SentencePiece model with Gemma's special ids (pad 0, eos 1, bos 2, unk 3) on
//  the lines of `corpus` into path (tests); -1 with *err.
int gemma3_tok_train_tiny (const char *path, const char *const *corpus, int lines, int vocab_size,
                           char **err);

void gemma3_tok_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
