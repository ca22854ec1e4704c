/*  gemma3_tok.h - Gemma's tokenizer (class gemma3_tok): the SentencePiece model tokenizer.model
    through the sentencepiece library, with Gemma's conventions: the text stripped of leading
    and trailing whitespace, BOS (the model's bos id, 2 for Gemma) first, no EOS, truncation to
    max_len tokens (BOS included), then padding with the pad id (0) to max_len on the left (as
    LTX-2 pads) or on the right.
*/
#ifndef GEMMA3_TOK_H_INCLUDED
#define GEMMA3_TOK_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _gemma3_tok_t gemma3_tok_t;

//  Loads tokenizer.model (a file, or a directory holding it). NULL with *err naming the file
//  when it is missing, unreadable or not a SentencePiece model with BOS and pad ids.
gemma3_tok_t *gemma3_tok_new (const char *path, char **err);
void gemma3_tok_destroy (gemma3_tok_t **self_p);

int gemma3_tok_vocab_size (gemma3_tok_t *self);
int gemma3_tok_bos_id (gemma3_tok_t *self);
int gemma3_tok_pad_id (gemma3_tok_t *self);

//  Encodes text (UTF-8) into ids [max_len] and mask [max_len] (1 = token; may be NULL).
//  Returns the number of tokens (>= 1: BOS), or -1 with *err (caller frees; err may be NULL).
int gemma3_tok_encode (gemma3_tok_t *self, const char *text, int max_len, bool pad_left,
                       int32_t *ids, uint8_t *mask, char **err);

//  Trains a tiny SentencePiece model with Gemma's special ids (pad 0, eos 1, bos 2, unk 3) on
//  the lines of `corpus` (tests); -1 with *err.
int gemma3_tok_train_tiny (const char *path, const char *const *corpus, int lines, int vocab_size,
                           char **err);

void gemma3_tok_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
