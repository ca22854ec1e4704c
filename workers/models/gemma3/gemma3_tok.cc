/*  gemma3_tok.cc - Gemma's tokenizer options for vdgx_tok, and a tiny trainer for tests
    (see gemma3_tok.h).
*/
#include "gemma3_tok.h"

#include <sentencepiece_trainer.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cassert>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

extern "C" vdgx_tok_opts_t
gemma3_tok_opts (void)
{
    static const char *const files [] = { "tokenizer.model", NULL };
    vdgx_tok_opts_t o;
    memset (&o, 0, sizeof (o));
    o.name = "Gemma tokenizer";
    o.files = files;
    o.clean = VDGX_TOK_CLEAN_STRIP;
    o.add_bos = true;
    o.add_eos = false;
    o.pad_side = VDGX_TOK_PAD_LEFT;
    o.bos_id = o.eos_id = o.pad_id = -1;        //  the model's own
    return o;
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
        *err = strdup (("tiny Gemma tokenizer: cannot write " + input).c_str ());
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
        *err = strdup (("tiny Gemma tokenizer: training failed: " + status.ToString ()).c_str ());
        return -1;
    }
    if (prefix + ".model" != path && rename ((prefix + ".model").c_str (), path)) {
        *err = strdup ((std::string ("tiny Gemma tokenizer: cannot write ") + path).c_str ());
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
    vdgx_tok_opts_t opts = gemma3_tok_opts ();
    vdgx_tok_t *tok = vdgx_tok_new (dir, &opts, &err);
    assert (tok && vdgx_tok_bos_id (tok) == 2 && vdgx_tok_pad_id (tok) == 0);
    int32_t ids [16], ids2 [16];
    uint8_t mask [16];
    //  left padding: pads, then BOS, then the pieces; whitespace around the text is dropped
    int n = vdgx_tok_encode (tok, "  a cat walks\n", 16, ids, mask, &err);
    assert (n > 2 && n < 16);
    for (int i = 0; i < 16; i++) {
        assert (mask [i] == (i >= 16 - n));
        assert (i >= 16 - n || ids [i] == 0);
    }
    assert (ids [16 - n] == 2);
    for (int i = 17 - n; i < 16; i++)
        assert (ids [i] > 3);                   //  pieces only: no EOS, unk or pad
    char *text = vdgx_tok_decode (tok, ids + 17 - n, n - 1);
    assert (text && strcmp (text, "a cat walks") == 0);
    free (text);
    //  truncation keeps BOS and the first max_len - 1 pieces; empty text is BOS alone
    assert (vdgx_tok_encode (tok, "a cat walks", 2, ids2, mask, &err) == 2);
    assert (ids2 [0] == 2 && ids2 [1] == ids [17 - n] && mask [0] && mask [1]);
    assert (vdgx_tok_encode (tok, " \t ", 4, ids2, mask, &err) == 1 && ids2 [3] == 2 && !mask [2]);
    vdgx_tok_destroy (&tok);
    //  missing and malformed files name the file
    std::string missing = std::string (dir) + "/nope.model";
    assert (!vdgx_tok_new (missing.c_str (), &opts, &err) && strstr (err, "nope.model"));
    free (err);
    FILE *f = fopen (model.c_str (), "w");
    fputs ("not a sentencepiece model", f);
    fclose (f);
    assert (!vdgx_tok_new (dir, &opts, &err) && strstr (err, "tokenizer.model") && strstr (err, "Gemma tokenizer"));
    if (verbose)
        printf ("\n   %s", err);
    free (err);
    remove (model.c_str ());
    rmdir (dir);
    printf ("OK\n");
}
