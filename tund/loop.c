/*
 * tund/loop.c — the single-threaded event loop (see tund.h for the order of
 * one turn).  lwIP (NO_SYS=1) runs only from here.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <malloc.h>
#include <sched.h>
#include <time.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>

#include "lwip/timeouts.h"
#include "lwip/sys.h"
#include "tund.h"

static int epfd = -1;
static int stopping;
static struct ev timer_ev;

struct deferred {
  void (*fn)(void *);
  void *p;
};
static struct deferred *dfr;
static size_t n_dfr, cap_dfr;

/* Absolute CLOCK_MONOTONIC time (ms) the timerfd is armed for, 0 if none.
 * Re-arming costs a syscall per loop turn; skip it while the armed expiry
 * comes no later than lwIP's next timeout (an early wake-up is harmless). */
static uint64_t armed_ms;

static uint64_t mono_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void timer_fire(struct ev *ev, uint32_t events)
{
  uint64_t n;
  armed_ms = 0;
  ssize_t r = read(ev->fd, &n, sizeof(n));
  (void)r;
  (void)events;
}

/*
 * The heap.  lwIP runs on libc malloc here, and a local path's segments are
 * 64 KiB pbufs: with glibc's defaults (trim the heap top above 128 KiB,
 * mmap threshold adjusted on the fly) a busy tund grew and shrank its heap
 * with brk() hundreds of times a second and took page faults refilling it —
 * with 8 encrypted streams that doubled the receiving tund's CPU per GB.
 * The top of the heap is now kept (up to HEAP_TRIM_THRESHOLD, grown in
 * HEAP_TOP_PAD steps, the mmap threshold fixed above any pbuf), and given
 * back once the TUN has been quiet for HEAP_IDLE_TRIM_MS.  See PERFORMANCE.md.
 */
#define HEAP_TRIM_THRESHOLD (32 << 20)
#define HEAP_TOP_PAD        (8 << 20)
#define HEAP_MMAP_THRESHOLD (1 << 20)
#define HEAP_IDLE_TRIM_MS   1000
static uint64_t traffic, traffic_seen, quiet_since_ms;
static int heap_trimmed = 1;

void loop_note_traffic(void) { traffic++; }

static void heap_idle_trim(uint64_t now)
{
  if (traffic != traffic_seen) {
    traffic_seen = traffic;
    quiet_since_ms = now;
    heap_trimmed = 0;
  } else if (!heap_trimmed && now - quiet_since_ms >= HEAP_IDLE_TRIM_MS) {
    malloc_trim(0);
    heap_trimmed = 1;
  }
}

int loop_init(void)
{
  mallopt(M_TRIM_THRESHOLD, HEAP_TRIM_THRESHOLD);
  mallopt(M_TOP_PAD, HEAP_TOP_PAD);
  mallopt(M_MMAP_THRESHOLD, HEAP_MMAP_THRESHOLD);
  epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0)
    return -1;
  timer_ev.fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (timer_ev.fd < 0)
    return -1;
  timer_ev.fn = timer_fire;
  return loop_add(&timer_ev, EPOLLIN);
}

int loop_add(struct ev *ev, uint32_t events)
{
  struct epoll_event e = { .events = events, .data.ptr = ev };
  return epoll_ctl(epfd, EPOLL_CTL_ADD, ev->fd, &e);
}

int loop_mod(struct ev *ev, uint32_t events)
{
  struct epoll_event e = { .events = events, .data.ptr = ev };
  return epoll_ctl(epfd, EPOLL_CTL_MOD, ev->fd, &e);
}

void loop_del(struct ev *ev)
{
  if (ev->fd >= 0)
    epoll_ctl(epfd, EPOLL_CTL_DEL, ev->fd, NULL);
}

void loop_stop(void) { stopping = 1; }
int loop_stopping(void) { return stopping; }

void loop_defer_free(void (*fn)(void *), void *p)
{
  if (n_dfr == cap_dfr) {
    size_t nc = cap_dfr ? cap_dfr * 2 : 64;
    struct deferred *d = realloc(dfr, nc * sizeof(*d));
    if (!d) {
      /* cannot defer: leak rather than risk a use-after-free */
      log_err("out of memory deferring a free");
      return;
    }
    dfr = d;
    cap_dfr = nc;
  }
  dfr[n_dfr].fn = fn;
  dfr[n_dfr].p = p;
  n_dfr++;
}

static void run_deferred(void)
{
  for (size_t i = 0; i < n_dfr; i++)
    dfr[i].fn(dfr[i].p);
  n_dfr = 0;
}

static void arm_timer(void)
{
  u32_t ms = sys_timeouts_sleeptime();
  if (ms == SYS_TIMEOUTS_SLEEPTIME_INFINITE)
    ms = 1000;
  if (ms == 0)
    ms = 1;
  uint64_t now = mono_ms(), want = now + ms;
  heap_idle_trim(now);
  if (armed_ms && armed_ms <= want)
    return;
  struct itimerspec its;
  memset(&its, 0, sizeof(its));
  its.it_value.tv_sec = (time_t)(want / 1000);
  its.it_value.tv_nsec = (long)(want % 1000) * 1000000L;
  if (timerfd_settime(timer_ev.fd, TFD_TIMER_ABSTIME, &its, NULL) == 0)
    armed_ms = want;
}

static uint64_t mono_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Polling before sleeping (poll_us=).  Every step of a request and its
 * reply through enoshim wakes a process that was asleep (the program, tund
 * A, the kernel's path to tund B, the peer program, and back); on a virtual
 * machine waking a sleeping CPU is the dearest part of such a step — an
 * idle vCPU halts, and its wake-up goes through the hypervisor.  So, like
 * KVM's halt polling (halt_poll_ns and its grow/shrink rule) and Onload's
 * spinning, tund may look for events without sleeping for a short while
 * first.  The window adapts, the way KVM's does:
 *   - an event that came within the bound after the loop went to wait
 *     (while polling, or by a sleep no longer than the bound) grows it:
 *     from 0 to POLL_START_NS, then doubling, up to poll_us;
 *   - a sleep longer than the bound halves it (below POLL_START_NS: 0).
 * An idle or slow-paced tund therefore does not poll at all, and a busy one
 * never waits (it has events every turn).  While polling, tund yields the
 * CPU to any other runnable task after every empty look, so the programs
 * and the other tund on a small machine are not kept from running.
 * PERFORMANCE.md has what it costs in CPU and what it buys in latency. */
#define POLL_START_NS 10000u
static uint64_t poll_win_ns;
static uint64_t poll_found, poll_slept;   /* enoctl check shows them */

static int wait_events(struct epoll_event *evs, int max, int busy)
{
  if (busy)
    return epoll_wait(epfd, evs, max, 0);
  uint64_t bound = (uint64_t)cfg.poll_us * 1000u;
  if (poll_win_ns > bound)
    poll_win_ns = bound;
  if (bound == 0)
    return epoll_wait(epfd, evs, max, -1);
  uint64_t t0 = mono_ns();
  if (poll_win_ns) {
    do {
      int n = epoll_wait(epfd, evs, max, 0);
      if (n > 0)
        poll_found++;
      if (n != 0)
        return n;                 /* polled in time (or an error) */
      sched_yield();
    } while (mono_ns() - t0 < poll_win_ns);
  }
  poll_slept += poll_win_ns != 0;
  int n = epoll_wait(epfd, evs, max, -1);
  if (n > 0) {
    uint64_t waited = mono_ns() - t0;
    if (waited > bound)
      poll_win_ns = poll_win_ns / 2 >= POLL_START_NS ? poll_win_ns / 2 : 0;
    else if (poll_win_ns < bound)
      poll_win_ns = poll_win_ns ? poll_win_ns * 2 : POLL_START_NS;
  }
  return n;
}

int loop_poll_info(char *out, size_t outlen)
{
  return snprintf(out, outlen, "polling: window %llu us of %u, %llu found polling, %llu slept after polling",
                  (unsigned long long)(poll_win_ns / 1000u), cfg.poll_us,
                  (unsigned long long)poll_found, (unsigned long long)poll_slept);
}

void loop_run(void)
{
  struct epoll_event evs[256];
  while (!stopping) {
    arm_timer();
    /* nothing pending: use the time for work done ahead (one piece per
     * turn, then look at events again) */
    int busy = conn_have_pending() || tun_loopback_pending() || crypt_idle();
    int n = wait_events(evs, 256, busy);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      log_err("epoll_wait: %s", strerror(errno));
      break;
    }
    for (int i = 0; i < n; i++) {
      struct ev *ev = evs[i].data.ptr;
      ev->fn(ev, evs[i].events);
    }
    sys_check_timeouts();
    tun_loopback_poll();
    conn_run_pending();
    run_deferred();
  }
  run_deferred();
}
