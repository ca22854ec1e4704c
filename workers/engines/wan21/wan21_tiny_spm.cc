/*  wan21_tiny_spm.cc - trains the tiny demo tokenizer with SentencePiece's own trainer on a
    small embedded text (so no external tool or file is needed at run time), with the umT5
    special ids: pad 0, eos 1, unk 2, no bos.
*/
#include <sentencepiece_trainer.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

//  Declared in wan21_engine.h (not included: engine.h uses C11 atomics).
extern "C" int wan21_tiny_train_spm (const char *path, int vocab_size, char **err);

namespace {

const char *const s_corpus [] = {
    "A cat walks along a sunny windowsill and looks out at the busy street below.",
    "Waves roll onto a quiet beach at sunset while seagulls circle in the orange sky.",
    "A red car drives through a rainy city at night, its headlights reflecting on the road.",
    "Snow falls slowly over a pine forest as a deer steps carefully between the trees.",
    "A chef chops fresh vegetables in a bright kitchen and tosses them into a hot pan.",
    "Two astronauts float inside a space station, laughing as a pen drifts past them.",
    "A small boat sails across a calm lake surrounded by green mountains and mist.",
    "Children run through a field of tall yellow flowers on a warm summer afternoon.",
    "An old man plays a violin on a stone bridge while people stop to listen.",
    "A dog jumps into a swimming pool and splashes water everywhere.",
    "Clouds move quickly over a desert as the shadows of the dunes change shape.",
    "A hummingbird hovers near a purple flower, its wings a blur of motion.",
    "Lanterns glow above a crowded night market full of food stalls and music.",
    "A train crosses a long bridge over a river valley in early morning light.",
    "A robot waters plants in a greenhouse filled with tomatoes and herbs.",
    "Fireworks explode over a harbor and their colors shimmer on the dark water.",
    "A woman in a blue dress dances in the rain on an empty street.",
    "Leaves swirl in the wind through a park in autumn, gold and red and brown.",
    "A panda eats bamboo while sitting in the shade of a tall tree.",
    "Rain drips from the roof of a wooden cabin in the mountains.",
    "A skateboarder glides down a ramp and spins in the air before landing.",
    "Steam rises from a cup of coffee on a table next to an open book.",
    "A spaceship lands on a red planet, raising a cloud of dust.",
    "Fish swim around a colorful coral reef in clear blue water.",
    "A horse gallops across a wide green meadow under a cloudy sky.",
    "City lights turn on one by one as the evening becomes night.",
    "A child builds a sandcastle while the tide slowly comes in.",
    "Thunder and lightning fill the sky above a lonely farmhouse.",
    "A butterfly lands on the hand of a smiling girl in a garden.",
    "Bright, vivid colors; static frames; blurry details; low quality; ugly; deformed.",
    "cinematic, slow motion, close up, wide shot, aerial view, golden hour, 4k, realistic",
    "The quick brown fox jumps over the lazy dog 0123456789 times.",
};

class s_iterator_t : public sentencepiece::SentenceIterator {
  public:
    bool done () const override { return index_ >= count (); }
    void Next () override { index_++; }
    const std::string &value () const override { value_ = s_corpus [index_ % count ()]; return value_; }
    sentencepiece::util::Status status () const override { return sentencepiece::util::Status (); }
  private:
    static size_t count () { return sizeof s_corpus / sizeof s_corpus [0]; }
    size_t index_ = 0;
    mutable std::string value_;
};

char *
s_dup (const std::string &s)
{
    char *p = (char *) malloc (s.size () + 1);
    if (p)
        memcpy (p, s.c_str (), s.size () + 1);
    return p;
}

}   // namespace

extern "C" int
wan21_tiny_train_spm (const char *path, int vocab_size, char **err)
{
    if (!path || vocab_size < 16) {
        if (err)
            *err = s_dup ("tiny tokenizer: bad arguments");
        return -1;
    }
    std::string args = "--model_type=unigram --vocab_size=" + std::to_string (vocab_size)
        + " --hard_vocab_limit=false --pad_id=0 --eos_id=1 --unk_id=2 --bos_id=-1"
          " --character_coverage=1.0 --num_threads=1 --minloglevel=2"
          " --normalization_rule_name=nmt_nfkc";
    s_iterator_t it;
    std::string proto;
    auto status = sentencepiece::SentencePieceTrainer::Train (args, &it, &proto);
    if (!status.ok () || proto.empty ()) {
        if (err)
            *err = s_dup ("tiny tokenizer: training failed: " + status.ToString ());
        return -1;
    }
    std::string tmp = std::string (path) + ".tmp";
    FILE *f = fopen (tmp.c_str (), "wb");
    bool ok = f && fwrite (proto.data (), 1, proto.size (), f) == proto.size ();
    if (f && fclose (f))
        ok = false;
    if (!ok || rename (tmp.c_str (), path)) {
        remove (tmp.c_str ());
        if (err)
            *err = s_dup (std::string ("tiny tokenizer: cannot write ") + path);
        return -1;
    }
    return 0;
}
