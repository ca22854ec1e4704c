/*  gemma3_tok.cc - Gemma's tokenizer over the sentencepiece library (see gemma3_tok.h). */
#include "gemma3_tok.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cassert>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

struct _gemma3_tok_t {
    sentencepiece::SentencePieceProcessor sp;
    int bos, pad;
};

namespace {

char *
s_dup (const std::string &s)
{
    char *p = (char *) malloc (s.size () + 1);
    if (p)
        memcpy (p, s.c_str (), s.size () + 1);
    return p;
}

}   // namespace

extern "C" gemma3_tok_t *
gemma3_tok_new (const char *path, char **err)
{
    assert (path && err);
    *err = NULL;
    std::string file = path;
    struct stat st;
    if (stat (path, &st) == 0 && S_ISDIR (st.st_mode))
        file += "/tokenizer.model";
    if (stat (file.c_str (), &st) != 0 || !S_ISREG (st.st_mode)) {
        *err = s_dup ("Gemma tokenizer: '" + file + "' does not exist or is not a file");
        return NULL;
    }
    gemma3_tok_t *self = new (std::nothrow) gemma3_tok_t ();
    if (!self) {
        *err = s_dup ("out of memory");
        return NULL;
    }
    sentencepiece::util::Status status = self->sp.Load (file);
    if (!status.ok ()) {
        *err = s_dup ("Gemma tokenizer: cannot load '" + file + "': " + status.ToString ());
        delete self;
        return NULL;
    }
    self->bos = self->sp.bos_id ();
    self->pad = self->sp.pad_id ();
    if (self->bos < 0 || self->pad < 0 || self->bos >= self->sp.GetPieceSize ()
     || self->pad >= self->sp.GetPieceSize ()) {
        *err = s_dup ("Gemma tokenizer: '" + file + "' has no BOS or pad id");
        delete self;
        return NULL;
    }
    return self;
}

extern "C" void
gemma3_tok_destroy (gemma3_tok_t **self_p)
{
    assert (self_p);
    delete *self_p;
    *self_p = NULL;
}

extern "C" int
gemma3_tok_vocab_size (gemma3_tok_t *self)
{
    assert (self);
    return self->sp.GetPieceSize ();
}

extern "C" int
gemma3_tok_bos_id (gemma3_tok_t *self)
{
    assert (self);
    return self->bos;
}

extern "C" int
gemma3_tok_pad_id (gemma3_tok_t *self)
{
    assert (self);
    return self->pad;
}

extern "C" int
gemma3_tok_encode (gemma3_tok_t *self, const char *text, int max_len, bool pad_left,
                   int32_t *ids, uint8_t *mask, char **err)
{
    assert (self && text && ids);
    if (err)
        *err = NULL;
    if (max_len < 1) {
        if (err)
            *err = s_dup ("Gemma tokenizer: max_len must be >= 1");
        return -1;
    }
    //  Python's str.strip() on the ASCII whitespace
    const char *ws = " \t\n\r\f\v";
    size_t begin = strspn (text, ws), end = strlen (text);
    while (end > begin && strchr (ws, text [end - 1]))
        end--;
    std::vector<int> pieces;
    sentencepiece::util::Status status = self->sp.Encode (std::string (text + begin, end - begin), &pieces);
    if (!status.ok ()) {
        if (err)
            *err = s_dup ("Gemma tokenizer: " + status.ToString ());
        return -1;
    }
    size_t n = 1 + pieces.size ();
    if (n > (size_t) max_len)
        n = (size_t) max_len;
    size_t first = pad_left? (size_t) max_len - n: 0;
    for (int i = 0; i < max_len; i++) {
        ids [i] = self->pad;
        if (mask)
            mask [i] = 0;
    }
    for (size_t i = 0; i < n; i++) {
        ids [first + i] = i == 0? self->bos: pieces [i - 1];
        if (mask)
            mask [first + i] = 1;
    }
    return (int) n;
}

extern "C" int
gemma3_tok_train_tiny (const char *path, const char *const *corpus, int lines, int vocab_size,
                       char **err)
{
    assert (path && corpus && lines > 0 && err);
    *err = NULL;
    std::string input = std::string (path) + ".corpus.txt";
    FILE *f = fopen (input.c_str (), "w");
    if (!f) {
        *err = s_dup ("tiny Gemma tokenizer: cannot write " + input);
        return -1;
    }
    for (int i = 0; i < lines; i++)
        fprintf (f, "%s\n", corpus [i]);
    fclose (f);
    std::string prefix = path;
    if (prefix.size () > 6 && prefix.compare (prefix.size () - 6, 6, ".model") == 0)
        prefix.resize (prefix.size () - 6);
    std::string args = "--input=" + input + " --model_prefix=" + prefix
        + " --model_type=unigram --vocab_size=" + std::to_string (vocab_size)
        + " --hard_vocab_limit=false --pad_id=0 --eos_id=1 --bos_id=2 --unk_id=3"
          " --character_coverage=1.0 --num_threads=1 --minloglevel=2";
    sentencepiece::util::Status status = sentencepiece::SentencePieceTrainer::Train (args);
    remove (input.c_str ());
    remove ((prefix + ".vocab").c_str ());
    if (!status.ok ()) {
        *err = s_dup ("tiny Gemma tokenizer: training failed: " + status.ToString ());
        return -1;
    }
    if (prefix + ".model" != path && rename ((prefix + ".model").c_str (), path)) {
        *err = s_dup (std::string ("tiny Gemma tokenizer: cannot write ") + path);
        return -1;
    }
    return 0;
}

extern "C" void
gemma3_tok_test (bool verbose)
{
    printf (" * gemma3_tok: ");
    char dir [] = "/tmp/vdgx-gemma3-tok-XXXXXX";
    assert (mkdtemp (dir));
    std::string model = std::string (dir) + "/tokenizer.model";
    const char *corpus [] = {
        "A cat walks along a sunny windowsill and looks out at the busy street below.",
        "Waves roll onto a quiet beach at sunset while seagulls circle in the orange sky.",
        "A red car drives through a rainy city at night, its headlights reflecting on the road.",
        "Snow falls slowly over a pine forest as a deer steps carefully between the trees.",
        "The quick brown fox jumps over the lazy dog 0123456789 times.",
    };
    char *err = NULL;
    assert (gemma3_tok_train_tiny (model.c_str (), corpus, 5, 60, &err) == 0);
    gemma3_tok_t *tok = gemma3_tok_new (dir, &err);
    assert (tok && gemma3_tok_bos_id (tok) == 2 && gemma3_tok_pad_id (tok) == 0);
    int32_t ids [16], ids2 [16];
    uint8_t mask [16];
    //  left padding: pads, then BOS, then the pieces; whitespace around the text is dropped
    int n = gemma3_tok_encode (tok, "  a cat walks\n", 16, true, ids, mask, &err);
    assert (n > 2 && n < 16);
    for (int i = 0; i < 16; i++) {
        assert (mask [i] == (i >= 16 - n));
        assert (i >= 16 - n || ids [i] == 0);
    }
    assert (ids [16 - n] == 2);
    std::vector<int> pieces;
    tok->sp.Encode ("a cat walks", &pieces);
    assert ((int) pieces.size () == n - 1);
    for (int i = 1; i < n; i++)
        assert (ids [16 - n + i] == pieces [(size_t) i - 1] && ids [16 - n + i] != 1);
    //  right padding puts the same tokens first
    assert (gemma3_tok_encode (tok, "a cat walks", 16, false, ids2, NULL, &err) == n);
    assert (memcmp (ids2, ids + 16 - n, sizeof (int32_t) * (size_t) n) == 0 && ids2 [n] == 0);
    //  truncation keeps BOS and the first max_len - 1 pieces; empty text is BOS alone
    assert (gemma3_tok_encode (tok, "a cat walks", 2, true, ids2, mask, &err) == 2);
    assert (ids2 [0] == 2 && ids2 [1] == pieces [0] && mask [0] && mask [1]);
    assert (gemma3_tok_encode (tok, " \t ", 4, true, ids2, mask, &err) == 1 && ids2 [3] == 2 && !mask [2]);
    assert (gemma3_tok_encode (tok, "x", 0, true, ids2, mask, &err) == -1 && err);
    free (err);
    gemma3_tok_destroy (&tok);
    assert (!tok);
    //  missing and malformed files name the file
    std::string missing = std::string (dir) + "/nope.model";
    assert (!gemma3_tok_new (missing.c_str (), &err) && strstr (err, "nope.model"));
    free (err);
    FILE *f = fopen (model.c_str (), "w");
    fputs ("not a sentencepiece model", f);
    fclose (f);
    assert (!gemma3_tok_new (model.c_str (), &err) && strstr (err, "tokenizer.model"));
    if (verbose)
        printf ("\n   %s", err);
    free (err);
    remove (model.c_str ());
    rmdir (dir);
    printf ("OK\n");
}
