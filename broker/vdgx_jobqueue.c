/*  vdgx_jobqueue.c - per-model priority queues of job ids (see the header).
*/
#include "vdgx_jobqueue.h"
#include <assert.h>
#include <string.h>

typedef struct {
    zlistx_t *lists [VDGX_JOBQUEUE_PRIORITIES];
    size_t depth;
} s_model_t;

typedef struct {
    char *id;
    char *model;
    int priority;
    int64_t queued_at;
    void *handle;               //  in its model's list of its priority
} s_item_t;

struct _vdgx_jobqueue_t {
    size_t max_per_model;
    zhashx_t *models;           //  model name -> s_model_t
    zhashx_t *items;            //  job id -> s_item_t
    size_t size;
};

static void
s_model_destroy (void **item_p)
{
    s_model_t *m = (s_model_t *) *item_p;
    if (m) {
        for (int p = 0; p < VDGX_JOBQUEUE_PRIORITIES; p++)
            zlistx_destroy (&m->lists [p]);
        free (m);
        *item_p = NULL;
    }
}

static void
s_item_destroy (void **item_p)
{
    s_item_t *it = (s_item_t *) *item_p;
    if (it) {
        free (it->id);
        free (it->model);
        free (it);
        *item_p = NULL;
    }
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
    return self;
}

void
vdgx_jobqueue_destroy (vdgx_jobqueue_t **self_p)
{
    assert (self_p);
    vdgx_jobqueue_t *self = *self_p;
    if (self) {
        //  Lists hold borrowed item pointers: drop them before the items.
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
        for (int p = 0; p < VDGX_JOBQUEUE_PRIORITIES; p++)
            m->lists [p] = zlistx_new ();
        zhashx_insert (self->models, model, m);
    }
    return m;
}

bool
vdgx_jobqueue_full (vdgx_jobqueue_t *self, const char *model)
{
    assert (self && model);
    s_model_t *m = s_model (self, model, false);
    return self->max_per_model && m && m->depth >= self->max_per_model;
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
    s_item_t *it = (s_item_t *) zmalloc (sizeof (s_item_t));
    assert (it);
    it->id = strdup (id);
    it->model = strdup (model);
    it->priority = priority;
    it->queued_at = queued_at;
    it->handle = front? zlistx_add_start (m->lists [priority], it)
                      : zlistx_add_end (m->lists [priority], it);
    zhashx_insert (self->items, id, it);
    m->depth++;
    self->size++;
    return 0;
}

static s_item_t *
s_head (s_model_t *m)
{
    for (int p = 0; p < VDGX_JOBQUEUE_PRIORITIES; p++) {
        s_item_t *it = (s_item_t *) zlistx_first (m->lists [p]);
        if (it)
            return it;
    }
    return NULL;
}

const char *
vdgx_jobqueue_peek (vdgx_jobqueue_t *self, const char *model)
{
    assert (self && model);
    s_model_t *m = s_model (self, model, false);
    s_item_t *it = m? s_head (m): NULL;
    return it? it->id: NULL;
}

int
vdgx_jobqueue_remove (vdgx_jobqueue_t *self, const char *id)
{
    assert (self && id);
    s_item_t *it = (s_item_t *) zhashx_lookup (self->items, id);
    if (!it)
        return -1;
    s_model_t *m = s_model (self, it->model, false);
    assert (m);
    zlistx_delete (m->lists [it->priority], it->handle);
    m->depth--;
    self->size--;
    //  Forget empty models so that a stream of one-off names leaves nothing behind.
    if (m->depth == 0)
        zhashx_delete (self->models, it->model);
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
    s_item_t *target = (s_item_t *) zhashx_lookup (self->items, id);
    if (!target)
        return 0;
    s_model_t *m = s_model (self, target->model, false);
    size_t pos = 0;
    for (int p = 0; p < target->priority; p++)
        pos += zlistx_size (m->lists [p]);
    s_item_t *it = (s_item_t *) zlistx_first (m->lists [target->priority]);
    while (it) {
        pos++;
        if (it == target)
            break;
        it = (s_item_t *) zlistx_next (m->lists [target->priority]);
    }
    return pos;
}

size_t
vdgx_jobqueue_depth (vdgx_jobqueue_t *self, const char *model)
{
    assert (self && model);
    s_model_t *m = s_model (self, model, false);
    return m? m->depth: 0;
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
        if (m->depth)
            zlist_append (list, (void *) zhashx_cursor (self->models));
    return list;
}

zlist_t *
vdgx_jobqueue_older_than (vdgx_jobqueue_t *self, const char *model, int64_t cutoff)
{
    assert (self && model);
    zlist_t *list = zlist_new ();
    zlist_autofree (list);
    s_model_t *m = s_model (self, model, false);
    if (!m)
        return list;
    for (int p = 0; p < VDGX_JOBQUEUE_PRIORITIES; p++)
        for (s_item_t *it = (s_item_t *) zlistx_first (m->lists [p]); it;
             it = (s_item_t *) zlistx_next (m->lists [p]))
            if (it->queued_at < cutoff)
                zlist_append (list, it->id);
    return list;
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
    zlist_t *old = vdgx_jobqueue_older_than (q, "m", 12);
    assert (zlist_size (old) == 2);
    zlist_destroy (&old);
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
    vdgx_jobqueue_destroy (&q);
    assert (q == NULL);
    if (verbose)
        printf ("(10000 ids) ");
    printf ("OK\n");
}
