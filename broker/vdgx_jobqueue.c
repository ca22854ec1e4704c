/*  vdgx_jobqueue.c - per-model priority queues of job ids (see the header).
*/
#include "vdgx_jobqueue.h"
#include "vdgx_ostree.h"
#include <assert.h>
#include <string.h>

//  A tree key: the priority in the top bits, the turn below it. Pushes to the back take
//  increasing turns, pushes to the front decreasing ones, both from the middle of the range.
#define S_TURN_BITS 60
#define S_TURN_MID  ((uint64_t) 1 << (S_TURN_BITS - 1))

typedef struct {
    char *name;
    vdgx_ostree_t *tree;        //  key -> s_item_t (borrowed)
    zlistx_t *by_age;           //  s_item_t (borrowed), oldest queued_at first
    uint64_t back, front;       //  next turns (back grows, front shrinks)
} s_model_t;

typedef struct {
    s_model_t *model;
    uint64_t key;
    int64_t queued_at;
    void *age_handle;
    char id [];                 //  the hash key
} s_item_t;

struct _vdgx_jobqueue_t {
    size_t max_per_model;
    zhashx_t *models;           //  model name -> s_model_t
    zhashx_t *items;            //  job id -> s_item_t (owned; keyed by its own id)
    size_t size;
};

static void
s_model_destroy (void **item_p)
{
    s_model_t *m = (s_model_t *) *item_p;
    if (m) {
        vdgx_ostree_destroy (&m->tree);
        zlistx_destroy (&m->by_age);
        free (m->name);
        free (m);
        *item_p = NULL;
    }
}

static void
s_item_destroy (void **item_p)
{
    free (*item_p);
    *item_p = NULL;
}

//  FNV-1a with a final mix. zhashx's default hash (33 * h ^ c) spreads ids that share a
//  prefix and count up (a timestamp then a counter) badly: long chains, and each chain over
//  zhashx's limit grows the table again (gigabytes at a million ids).
size_t
vdgx_jobqueue_id_hash (const void *key)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (const unsigned char *p = (const unsigned char *) key; *p; p++)
        h = (h ^ *p) * 0x100000001b3ULL;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return (size_t) h;
}

static int
s_age_compare (const void *a, const void *b)
{
    int64_t x = ((const s_item_t *) a)->queued_at, y = ((const s_item_t *) b)->queued_at;
    return x < y? -1: x > y;
}

vdgx_jobqueue_t *
vdgx_jobqueue_new (size_t max_per_model)
{
    vdgx_jobqueue_t *self = (vdgx_jobqueue_t *) zmalloc (sizeof (vdgx_jobqueue_t));
    assert (self);
    self->max_per_model = max_per_model;
    self->models = zhashx_new ();
    zhashx_set_destructor (self->models, s_model_destroy);
    self->items = zhashx_new ();
    zhashx_set_destructor (self->items, s_item_destroy);
    //  The item holds its id: no second copy per queued job.
    zhashx_set_key_duplicator (self->items, NULL);
    zhashx_set_key_destructor (self->items, NULL);
    zhashx_set_key_hasher (self->items, vdgx_jobqueue_id_hash);
    return self;
}

void
vdgx_jobqueue_destroy (vdgx_jobqueue_t **self_p)
{
    assert (self_p);
    vdgx_jobqueue_t *self = *self_p;
    if (self) {
        //  Models hold borrowed item pointers: drop them before the items.
        zhashx_destroy (&self->models);
        zhashx_destroy (&self->items);
        free (self);
        *self_p = NULL;
    }
}

static s_model_t *
s_model (vdgx_jobqueue_t *self, const char *model, bool create)
{
    s_model_t *m = (s_model_t *) zhashx_lookup (self->models, model);
    if (!m && create) {
        m = (s_model_t *) zmalloc (sizeof (s_model_t));
        assert (m);
        m->name = strdup (model);
        m->tree = vdgx_ostree_new ();
        m->by_age = zlistx_new ();
        zlistx_set_comparator (m->by_age, s_age_compare);
        m->back = S_TURN_MID;
        m->front = S_TURN_MID - 1;
        zhashx_insert (self->models, model, m);
    }
    return m;
}

bool
vdgx_jobqueue_full (vdgx_jobqueue_t *self, const char *model)
{
    assert (self && model);
    s_model_t *m = s_model (self, model, false);
    return self->max_per_model && m && vdgx_ostree_size (m->tree) >= self->max_per_model;
}

int
vdgx_jobqueue_push (vdgx_jobqueue_t *self, const char *model, const char *id,
                    int priority, bool front, bool force, int64_t queued_at)
{
    assert (self && model && id);
    assert (priority >= 0 && priority < VDGX_JOBQUEUE_PRIORITIES);
    if (zhashx_lookup (self->items, id))
        return -2;
    if (!force && vdgx_jobqueue_full (self, model))
        return -1;
    s_model_t *m = s_model (self, model, true);
    size_t len = strlen (id);
    s_item_t *it = (s_item_t *) zmalloc (sizeof (s_item_t) + len + 1);
    assert (it);
    memcpy (it->id, id, len + 1);
    it->model = m;
    it->queued_at = queued_at;
    uint64_t turn = front? m->front--: m->back++;
    it->key = ((uint64_t) priority << S_TURN_BITS) | turn;
    int rc = vdgx_ostree_insert (m->tree, it->key, it);
    assert (rc == 0);
    //  Sorted insert from the end: O(1) when queued_at only grows (the broker's clock).
    it->age_handle = zlistx_insert (m->by_age, it, false);
    zhashx_insert (self->items, it->id, it);
    self->size++;
    return 0;
}

const char *
vdgx_jobqueue_peek (vdgx_jobqueue_t *self, const char *model)
{
    assert (self && model);
    s_model_t *m = s_model (self, model, false);
    s_item_t *it = m? (s_item_t *) vdgx_ostree_first (m->tree, NULL): NULL;
    return it? it->id: NULL;
}

int
vdgx_jobqueue_remove (vdgx_jobqueue_t *self, const char *id)
{
    assert (self && id);
    s_item_t *it = (s_item_t *) zhashx_lookup (self->items, id);
    if (!it)
        return -1;
    s_model_t *m = it->model;
    vdgx_ostree_remove (m->tree, it->key);
    zlistx_delete (m->by_age, it->age_handle);
    self->size--;
    //  Forget empty models so that a stream of one-off names leaves nothing behind.
    if (vdgx_ostree_size (m->tree) == 0)
        zhashx_delete (self->models, m->name);
    zhashx_delete (self->items, id);
    return 0;
}

char *
vdgx_jobqueue_pop (vdgx_jobqueue_t *self, const char *model)
{
    const char *head = vdgx_jobqueue_peek (self, model);
    if (!head)
        return NULL;
    char *id = strdup (head);
    vdgx_jobqueue_remove (self, id);
    return id;
}

bool
vdgx_jobqueue_contains (vdgx_jobqueue_t *self, const char *id)
{
    assert (self && id);
    return zhashx_lookup (self->items, id) != NULL;
}

size_t
vdgx_jobqueue_position (vdgx_jobqueue_t *self, const char *id)
{
    assert (self && id);
    s_item_t *it = (s_item_t *) zhashx_lookup (self->items, id);
    return it? vdgx_ostree_rank (it->model->tree, it->key) + 1: 0;
}

size_t
vdgx_jobqueue_depth (vdgx_jobqueue_t *self, const char *model)
{
    assert (self && model);
    s_model_t *m = s_model (self, model, false);
    return m? vdgx_ostree_size (m->tree): 0;
}

size_t
vdgx_jobqueue_size (vdgx_jobqueue_t *self)
{
    assert (self);
    return self->size;
}

zlist_t *
vdgx_jobqueue_models (vdgx_jobqueue_t *self)
{
    assert (self);
    zlist_t *list = zlist_new ();
    zlist_autofree (list);
    for (s_model_t *m = (s_model_t *) zhashx_first (self->models); m;
         m = (s_model_t *) zhashx_next (self->models))
        zlist_append (list, m->name);
    return list;
}

const char *
vdgx_jobqueue_oldest (vdgx_jobqueue_t *self, const char *model, int64_t *queued_at_p)
{
    assert (self && model);
    s_model_t *m = s_model (self, model, false);
    s_item_t *it = m? (s_item_t *) zlistx_first (m->by_age): NULL;
    if (it && queued_at_p)
        *queued_at_p = it->queued_at;
    return it? it->id: NULL;
}

int64_t
vdgx_jobqueue_queued_at (vdgx_jobqueue_t *self, const char *id)
{
    assert (self && id);
    s_item_t *it = (s_item_t *) zhashx_lookup (self->items, id);
    return it? it->queued_at: -1;
}

//  Random pushes (front and back), pops and removes against a naive model: per model an
//  array of ids in queue order, where the position is the index + 1.
#define S_TEST_MODELS 3
#define S_TEST_CAP 600

typedef struct {
    char ids [S_TEST_CAP][16];
    int prio [S_TEST_CAP];
    int64_t at [S_TEST_CAP];
    size_t n;
} s_naive_t;

static void
s_test_random (void)
{
    s_naive_t *naive = (s_naive_t *) calloc (S_TEST_MODELS, sizeof (s_naive_t));
    vdgx_jobqueue_t *q = vdgx_jobqueue_new (0);
    const char *models [S_TEST_MODELS] = { "m0", "m1", "m2" };
    uint64_t rng = 0x2545F4914F6CDD1DULL;
    int next_id = 0;
    int64_t clock = 0;
    for (int i = 0; i < 60000; i++) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        int mi = (int) (rng % S_TEST_MODELS);
        s_naive_t *nv = &naive [mi];
        int op = (int) ((rng >> 8) % 8);
        clock += (int64_t) ((rng >> 16) % 3);
        if (op < 3 && nv->n < S_TEST_CAP) {
            int prio = (int) ((rng >> 24) % 3);
            bool front = ((rng >> 30) % 4) == 0;
            char id [16];
            snprintf (id, sizeof id, "r%d", next_id++);
            assert (vdgx_jobqueue_push (q, models [mi], id, prio, front, false, clock) == 0);
            //  Naive place: before the first of its priority (front) or after the last.
            size_t at = 0;
            if (front)
                while (at < nv->n && nv->prio [at] < prio)
                    at++;
            else
                while (at < nv->n && nv->prio [at] <= prio)
                    at++;
            memmove (nv->ids [at + 1], nv->ids [at], (nv->n - at) * sizeof nv->ids [0]);
            memmove (nv->prio + at + 1, nv->prio + at, (nv->n - at) * sizeof nv->prio [0]);
            memmove (nv->at + at + 1, nv->at + at, (nv->n - at) * sizeof nv->at [0]);
            snprintf (nv->ids [at], sizeof nv->ids [at], "%s", id);
            nv->prio [at] = prio;
            nv->at [at] = clock;
            nv->n++;
        }
        else
        if (op < 5 && nv->n) {
            size_t at = (size_t) (rng >> 33) % nv->n;
            if (op == 3) {
                char *id = vdgx_jobqueue_pop (q, models [mi]);
                assert (id && streq (id, nv->ids [0]));
                free (id);
                at = 0;
            }
            else
                assert (vdgx_jobqueue_remove (q, nv->ids [at]) == 0);
            memmove (nv->ids [at], nv->ids [at + 1], (nv->n - at - 1) * sizeof nv->ids [0]);
            memmove (nv->prio + at, nv->prio + at + 1, (nv->n - at - 1) * sizeof nv->prio [0]);
            memmove (nv->at + at, nv->at + at + 1, (nv->n - at - 1) * sizeof nv->at [0]);
            nv->n--;
        }
        else
        if (op < 7 && nv->n) {
            size_t at = (size_t) (rng >> 33) % nv->n;
            assert (vdgx_jobqueue_position (q, nv->ids [at]) == at + 1);
            assert (vdgx_jobqueue_queued_at (q, nv->ids [at]) == nv->at [at]);
        }
        else {
            //  The oldest: the smallest queued_at (the earliest pushed among equals).
            int64_t at = 0;
            const char *oldest = vdgx_jobqueue_oldest (q, models [mi], &at);
            if (!nv->n)
                assert (!oldest);
            else {
                int64_t min = nv->at [0];
                for (size_t k = 1; k < nv->n; k++)
                    if (nv->at [k] < min)
                        min = nv->at [k];
                assert (oldest && at == min);
                assert (vdgx_jobqueue_queued_at (q, oldest) == min);
            }
        }
        assert (vdgx_jobqueue_depth (q, models [mi]) == nv->n);
    }
    size_t total = 0;
    for (int m = 0; m < S_TEST_MODELS; m++)
        total += naive [m].n;
    assert (vdgx_jobqueue_size (q) == total);
    vdgx_jobqueue_destroy (&q);
    free (naive);
}

void
vdgx_jobqueue_test (bool verbose)
{
    printf (" * vdgx_jobqueue: ");
    vdgx_jobqueue_t *q = vdgx_jobqueue_new (4);
    assert (vdgx_jobqueue_push (q, "m", "a", 1, false, false, 10) == 0);
    assert (vdgx_jobqueue_push (q, "m", "b", 2, false, false, 11) == 0);
    assert (vdgx_jobqueue_push (q, "m", "c", 0, false, false, 12) == 0);
    assert (vdgx_jobqueue_push (q, "m", "d", 1, false, false, 13) == 0);
    assert (vdgx_jobqueue_push (q, "m", "a", 1, false, true, 13) == -2);
    //  Bounded: the fifth is refused unless forced.
    assert (vdgx_jobqueue_full (q, "m"));
    assert (vdgx_jobqueue_push (q, "m", "e", 0, false, false, 14) == -1);
    assert (vdgx_jobqueue_push (q, "n", "x", 1, false, false, 14) == 0);
    assert (vdgx_jobqueue_depth (q, "m") == 4 && vdgx_jobqueue_size (q) == 5);
    //  Order: c (high), a, d (normal), b (low).
    assert (vdgx_jobqueue_position (q, "c") == 1);
    assert (vdgx_jobqueue_position (q, "a") == 2);
    assert (vdgx_jobqueue_position (q, "d") == 3);
    assert (vdgx_jobqueue_position (q, "b") == 4);
    assert (vdgx_jobqueue_position (q, "zz") == 0);
    //  Deadline order: the oldest queued_at first, whatever the priority.
    int64_t at = 0;
    assert (streq (vdgx_jobqueue_oldest (q, "m", &at), "a") && at == 10);
    assert (vdgx_jobqueue_queued_at (q, "d") == 13 && vdgx_jobqueue_queued_at (q, "zz") == -1);
    assert (vdgx_jobqueue_oldest (q, "zz", &at) == NULL);
    zlist_t *models = vdgx_jobqueue_models (q);
    assert (zlist_size (models) == 2);
    zlist_destroy (&models);
    assert (vdgx_jobqueue_remove (q, "a") == 0);
    assert (vdgx_jobqueue_remove (q, "a") == -1);
    assert (!vdgx_jobqueue_contains (q, "a"));
    //  A re-queued job goes before the others of its priority.
    assert (vdgx_jobqueue_push (q, "m", "r", 1, true, true, 20) == 0);
    char *id = vdgx_jobqueue_pop (q, "m");
    assert (streq (id, "c"));
    free (id);
    id = vdgx_jobqueue_pop (q, "m");
    assert (streq (id, "r"));
    free (id);
    id = vdgx_jobqueue_pop (q, "m");
    assert (streq (id, "d"));
    free (id);
    id = vdgx_jobqueue_pop (q, "m");
    assert (streq (id, "b"));
    free (id);
    assert (vdgx_jobqueue_pop (q, "m") == NULL);
    assert (vdgx_jobqueue_depth (q, "m") == 0);
    assert (vdgx_jobqueue_peek (q, "n") && streq (vdgx_jobqueue_peek (q, "n"), "x"));
    //  Many ids: pop order stays FIFO within a priority.
    char name [32];
    vdgx_jobqueue_t *big = vdgx_jobqueue_new (0);
    for (int i = 0; i < 10000; i++) {
        snprintf (name, sizeof name, "j%05d", i);
        assert (vdgx_jobqueue_push (big, "m", name, i % 3, false, false, i) == 0);
    }
    assert (vdgx_jobqueue_position (big, "j00002") == 3334 + 3333 + 1);
    for (int p = 0; p < 3; p++)
        for (int i = p; i < 10000; i += 3) {
            snprintf (name, sizeof name, "j%05d", i);
            id = vdgx_jobqueue_pop (big, "m");
            assert (id && streq (id, name));
            free (id);
        }
    vdgx_jobqueue_destroy (&big);
    s_test_random ();
    vdgx_jobqueue_destroy (&q);
    assert (q == NULL);
    if (verbose)
        printf ("(10000 ids) ");
    printf ("OK\n");
}
