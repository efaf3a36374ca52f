/*
 * tund/loop.c — the single-threaded event loop (see tund.h for the order of
 * one turn).  lwIP (NO_SYS=1) runs only from here.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
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

static void timer_fire(struct ev *ev, uint32_t events)
{
  uint64_t n;
  ssize_t r = read(ev->fd, &n, sizeof(n));
  (void)r;
  (void)events;
}

int loop_init(void)
{
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
  struct itimerspec its;
  memset(&its, 0, sizeof(its));
  if (ms == SYS_TIMEOUTS_SLEEPTIME_INFINITE)
    ms = 1000;
  if (ms == 0)
    ms = 1;
  its.it_value.tv_sec = ms / 1000;
  its.it_value.tv_nsec = (long)(ms % 1000) * 1000000L;
  timerfd_settime(timer_ev.fd, 0, &its, NULL);
}

void loop_run(void)
{
  struct epoll_event evs[256];
  while (!stopping) {
    arm_timer();
    int n = epoll_wait(epfd, evs, 256, conn_have_pending() ? 0 : -1);
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
    conn_run_pending();
    run_deferred();
  }
  run_deferred();
}
