/*  vdgx_cpu_pool.c - a fixed set of worker threads for the CPU ops. A job is a loop of n
    independent iterations handed out one index at a time through an atomic counter, so
    uneven iterations balance themselves; the calling thread works too and returns when every
    iteration is done.
*/
#include "vdgx_kernels_private.h"

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

struct _vdgx_cpu_pool_t {
    int threads;                    //  including the caller
    pthread_t *tids;
    pthread_mutex_t mutex;
    pthread_cond_t wake, done;
    uint64_t generation;
    bool stop;
    void (*fn) (void *ctx, int64_t i);
    void *ctx;
    int64_t n;
    atomic_int_fast64_t next;
    int busy;                       //  workers still inside the current job
};

static void
s_work (vdgx_cpu_pool_t *self)
{
    while (true) {
        int64_t i = atomic_fetch_add (&self->next, 1);
        if (i >= self->n)
            break;
        self->fn (self->ctx, i);
    }
}

static void *
s_worker (void *arg)
{
    vdgx_cpu_pool_t *self = arg;
    uint64_t seen = 0;
    pthread_mutex_lock (&self->mutex);
    while (true) {
        while (!self->stop && self->generation == seen)
            pthread_cond_wait (&self->wake, &self->mutex);
        if (self->stop)
            break;
        seen = self->generation;
        pthread_mutex_unlock (&self->mutex);
        s_work (self);
        pthread_mutex_lock (&self->mutex);
        if (--self->busy == 0)
            pthread_cond_signal (&self->done);
    }
    pthread_mutex_unlock (&self->mutex);
    return NULL;
}

vdgx_cpu_pool_t *
vdgx_cpu_pool_new (int threads)
{
    if (threads <= 0) {
        long n = sysconf (_SC_NPROCESSORS_ONLN);
        threads = n > 0? (int) n: 1;
    }
    if (threads > 256)
        threads = 256;
    vdgx_cpu_pool_t *self = calloc (1, sizeof (*self));
    if (!self)
        return NULL;
    self->threads = threads;
    pthread_mutex_init (&self->mutex, NULL);
    pthread_cond_init (&self->wake, NULL);
    pthread_cond_init (&self->done, NULL);
    self->tids = calloc ((size_t) threads, sizeof (pthread_t));
    int started = 0;
    for (int i = 0; self->tids && i < threads - 1; i++) {
        if (pthread_create (&self->tids [i], NULL, s_worker, self))
            break;
        started++;
    }
    self->threads = started + 1;
    return self;
}

void
vdgx_cpu_pool_destroy (vdgx_cpu_pool_t **self_p)
{
    assert (self_p);
    vdgx_cpu_pool_t *self = *self_p;
    if (!self)
        return;
    pthread_mutex_lock (&self->mutex);
    self->stop = true;
    pthread_cond_broadcast (&self->wake);
    pthread_mutex_unlock (&self->mutex);
    for (int i = 0; i < self->threads - 1; i++)
        pthread_join (self->tids [i], NULL);
    free (self->tids);
    pthread_mutex_destroy (&self->mutex);
    pthread_cond_destroy (&self->wake);
    pthread_cond_destroy (&self->done);
    free (self);
    *self_p = NULL;
}

int
vdgx_cpu_pool_threads (vdgx_cpu_pool_t *self)
{
    return self? self->threads: 1;
}

void
vdgx_cpu_pool_run (vdgx_cpu_pool_t *self, int64_t n, void (*fn) (void *ctx, int64_t i), void *ctx)
{
    if (n <= 0)
        return;
    if (!self || self->threads == 1 || n == 1) {
        for (int64_t i = 0; i < n; i++)
            fn (ctx, i);
        return;
    }
    pthread_mutex_lock (&self->mutex);
    self->fn = fn;
    self->ctx = ctx;
    self->n = n;
    atomic_store (&self->next, 0);
    self->busy = self->threads - 1;
    self->generation++;
    pthread_cond_broadcast (&self->wake);
    pthread_mutex_unlock (&self->mutex);
    s_work (self);
    pthread_mutex_lock (&self->mutex);
    while (self->busy > 0)
        pthread_cond_wait (&self->done, &self->mutex);
    pthread_mutex_unlock (&self->mutex);
}
