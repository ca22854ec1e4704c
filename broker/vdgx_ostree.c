/*  vdgx_ostree.c - order-statistic treap (see the header).
*/
#include "vdgx_ostree.h"
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct s_node_t {
    uint64_t key;
    void *value;
    struct s_node_t *left, *right;
    uint32_t prio;              //  heap order: a parent's prio is >= its children's
    uint32_t size;              //  nodes in this subtree
} s_node_t;

struct _vdgx_ostree_t {
    s_node_t *root;
    uint64_t rng;               //  xorshift64 state for node priorities
};

static uint32_t
s_size (const s_node_t *t)
{
    return t? t->size: 0;
}

static void
s_fix (s_node_t *t)
{
    t->size = 1 + s_size (t->left) + s_size (t->right);
}

static uint32_t
s_random (vdgx_ostree_t *self)
{
    uint64_t x = self->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    self->rng = x;
    return (uint32_t) (x >> 32);
}

vdgx_ostree_t *
vdgx_ostree_new (void)
{
    vdgx_ostree_t *self = (vdgx_ostree_t *) calloc (1, sizeof (vdgx_ostree_t));
    assert (self);
    //  Any non-zero seed will do: the shape only has to be independent of the key order.
    self->rng = 0x9E3779B97F4A7C15ULL ^ (uint64_t) (uintptr_t) self;
    if (self->rng == 0)
        self->rng = 1;
    return self;
}

static void
s_free_all (s_node_t *t)
{
    //  Iterative (no recursion on a degenerate shape): rotate left children up.
    while (t) {
        if (t->left) {
            s_node_t *l = t->left;
            t->left = l->right;
            l->right = t;
            t = l;
        }
        else {
            s_node_t *next = t->right;
            free (t);
            t = next;
        }
    }
}

void
vdgx_ostree_destroy (vdgx_ostree_t **self_p)
{
    assert (self_p);
    vdgx_ostree_t *self = *self_p;
    if (self) {
        s_free_all (self->root);
        free (self);
        *self_p = NULL;
    }
}

static s_node_t *
s_rotate_right (s_node_t *t)
{
    s_node_t *l = t->left;
    t->left = l->right;
    l->right = t;
    s_fix (t);
    s_fix (l);
    return l;
}

static s_node_t *
s_rotate_left (s_node_t *t)
{
    s_node_t *r = t->right;
    t->right = r->left;
    r->left = t;
    s_fix (t);
    s_fix (r);
    return r;
}

static s_node_t *
s_insert (s_node_t *t, s_node_t *node)
{
    if (!t)
        return node;
    if (node->key < t->key) {
        t->left = s_insert (t->left, node);
        t->size++;
        if (t->left->prio > t->prio)
            t = s_rotate_right (t);
    }
    else {
        t->right = s_insert (t->right, node);
        t->size++;
        if (t->right->prio > t->prio)
            t = s_rotate_left (t);
    }
    return t;
}

int
vdgx_ostree_insert (vdgx_ostree_t *self, uint64_t key, void *value)
{
    assert (self);
    if (vdgx_ostree_lookup (self, key))
        return -1;
    s_node_t *node = (s_node_t *) calloc (1, sizeof (s_node_t));
    assert (node);
    node->key = key;
    node->value = value;
    node->prio = s_random (self);
    node->size = 1;
    self->root = s_insert (self->root, node);
    return 0;
}

//  Joins two treaps where every key of a is smaller than every key of b.
static s_node_t *
s_merge (s_node_t *a, s_node_t *b)
{
    if (!a)
        return b;
    if (!b)
        return a;
    if (a->prio > b->prio) {
        a->right = s_merge (a->right, b);
        s_fix (a);
        return a;
    }
    b->left = s_merge (a, b->left);
    s_fix (b);
    return b;
}

void *
vdgx_ostree_remove (vdgx_ostree_t *self, uint64_t key)
{
    assert (self);
    if (!vdgx_ostree_lookup (self, key))
        return NULL;
    //  The key is there: every node on the way down loses one from its subtree.
    s_node_t **link = &self->root;
    while ((*link)->key != key) {
        (*link)->size--;
        link = key < (*link)->key? &(*link)->left: &(*link)->right;
    }
    s_node_t *node = *link;
    *link = s_merge (node->left, node->right);
    void *value = node->value;
    free (node);
    return value;
}

void *
vdgx_ostree_lookup (vdgx_ostree_t *self, uint64_t key)
{
    assert (self);
    s_node_t *t = self->root;
    while (t && t->key != key)
        t = key < t->key? t->left: t->right;
    return t? t->value: NULL;
}

size_t
vdgx_ostree_rank (vdgx_ostree_t *self, uint64_t key)
{
    assert (self);
    size_t rank = 0;
    s_node_t *t = self->root;
    while (t) {
        if (key <= t->key)
            t = t->left;
        else {
            rank += s_size (t->left) + 1;
            t = t->right;
        }
    }
    return rank;
}

void *
vdgx_ostree_nth (vdgx_ostree_t *self, size_t n, uint64_t *key_p)
{
    assert (self);
    s_node_t *t = self->root;
    while (t) {
        size_t left = s_size (t->left);
        if (n < left)
            t = t->left;
        else
        if (n == left)
            break;
        else {
            n -= left + 1;
            t = t->right;
        }
    }
    if (t && key_p)
        *key_p = t->key;
    return t? t->value: NULL;
}

void *
vdgx_ostree_first (vdgx_ostree_t *self, uint64_t *key_p)
{
    assert (self);
    s_node_t *t = self->root;
    while (t && t->left)
        t = t->left;
    if (t && key_p)
        *key_p = t->key;
    return t? t->value: NULL;
}

size_t
vdgx_ostree_size (vdgx_ostree_t *self)
{
    assert (self);
    return s_size (self->root);
}

static size_t
s_depth (const s_node_t *t)
{
    if (!t)
        return 0;
    size_t l = s_depth (t->left), r = s_depth (t->right);
    return 1 + (l > r? l: r);
}

//  Checks the search order, the heap order and the subtree counts.
static uint32_t
s_check (const s_node_t *t, uint64_t lo, uint64_t hi, bool has_lo)
{
    if (!t)
        return 0;
    assert (!has_lo || t->key > lo);
    assert (t->key < hi || hi == UINT64_MAX);
    assert (!t->left || t->left->prio <= t->prio);
    assert (!t->right || t->right->prio <= t->prio);
    uint32_t n = 1 + s_check (t->left, lo, t->key, has_lo) + s_check (t->right, t->key, hi, true);
    assert (n == t->size);
    return n;
}

//  The naive model: a sorted array of keys (value = key + 1 as a pointer).
static size_t
s_model_find (const uint64_t *keys, size_t n, uint64_t key)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (keys [mid] < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

void
vdgx_ostree_test (bool verbose)
{
    printf (" * vdgx_ostree: ");
    vdgx_ostree_t *tree = vdgx_ostree_new ();
    assert (vdgx_ostree_size (tree) == 0 && vdgx_ostree_first (tree, NULL) == NULL);
    assert (vdgx_ostree_rank (tree, 5) == 0 && vdgx_ostree_nth (tree, 0, NULL) == NULL);
    assert (vdgx_ostree_remove (tree, 5) == NULL);
    int a = 1, b = 2, c = 3;
    assert (vdgx_ostree_insert (tree, 20, &b) == 0);
    assert (vdgx_ostree_insert (tree, 10, &a) == 0);
    assert (vdgx_ostree_insert (tree, 30, &c) == 0);
    assert (vdgx_ostree_insert (tree, 20, &c) == -1);
    assert (vdgx_ostree_lookup (tree, 20) == &b);
    assert (vdgx_ostree_rank (tree, 10) == 0 && vdgx_ostree_rank (tree, 20) == 1);
    assert (vdgx_ostree_rank (tree, 25) == 2 && vdgx_ostree_rank (tree, UINT64_MAX) == 3);
    uint64_t key = 0;
    assert (vdgx_ostree_first (tree, &key) == &a && key == 10);
    assert (vdgx_ostree_nth (tree, 2, &key) == &c && key == 30);
    assert (vdgx_ostree_remove (tree, 10) == &a && vdgx_ostree_size (tree) == 2);
    assert (vdgx_ostree_first (tree, &key) == &b && key == 20);
    vdgx_ostree_destroy (&tree);
    assert (tree == NULL);

    //  Random operations against the naive model, including keys at both ends of the range.
    const size_t cap = 4000;
    uint64_t *keys = (uint64_t *) calloc (cap, sizeof (uint64_t));
    size_t n = 0;
    uint64_t rng = 88172645463325252ULL;
    tree = vdgx_ostree_new ();
    size_t ops = 200000;
    for (size_t i = 0; i < ops; i++) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        int op = (int) (rng % 10);
        uint64_t k = (rng >> 8) % 5000;
        if (k == 4999)
            k = UINT64_MAX - 1;
        size_t at = s_model_find (keys, n, k);
        bool present = at < n && keys [at] == k;
        if (op < 4 && n < cap) {
            int rc = vdgx_ostree_insert (tree, k, (void *) (uintptr_t) (k + 1));
            assert (rc == (present? -1: 0));
            if (!present) {
                memmove (keys + at + 1, keys + at, (n - at) * sizeof (uint64_t));
                keys [at] = k;
                n++;
            }
        }
        else
        if (op < 7) {
            void *v = vdgx_ostree_remove (tree, k);
            assert (v == (present? (void *) (uintptr_t) (k + 1): NULL));
            if (present) {
                memmove (keys + at, keys + at + 1, (n - at - 1) * sizeof (uint64_t));
                n--;
            }
        }
        else
        if (op < 8) {
            assert (vdgx_ostree_rank (tree, k) == at);
            assert (vdgx_ostree_lookup (tree, k) == (present? (void *) (uintptr_t) (k + 1): NULL));
        }
        else
        if (op < 9 && n) {
            size_t nth = (size_t) (rng >> 20) % n;
            assert (vdgx_ostree_nth (tree, nth, &key) == (void *) (uintptr_t) (keys [nth] + 1));
            assert (key == keys [nth]);
        }
        else {
            void *first = vdgx_ostree_first (tree, &key);
            assert (n? first == (void *) (uintptr_t) (keys [0] + 1) && key == keys [0]: first == NULL);
        }
        assert (vdgx_ostree_size (tree) == n);
        if (i % 10000 == 0)
            assert (s_check (tree->root, 0, UINT64_MAX, false) == n);
    }
    vdgx_ostree_destroy (&tree);
    free (keys);

    //  Keys in order (the queue's common case) still give a shallow tree.
    tree = vdgx_ostree_new ();
    for (uint64_t k = 0; k < 100000; k++)
        assert (vdgx_ostree_insert (tree, k, &a) == 0);
    size_t depth = s_depth (tree->root);
    assert (depth < 64);
    assert (vdgx_ostree_rank (tree, 54321) == 54321);
    for (uint64_t k = 0; k < 100000; k += 2)
        assert (vdgx_ostree_remove (tree, k) == &a);
    assert (vdgx_ostree_rank (tree, 54321) == 27160);
    vdgx_ostree_destroy (&tree);
    if (verbose)
        printf ("(%zu random ops, depth %zu for 100000 sorted keys) ", ops, depth);
    printf ("OK\n");
}
