/*
 * shim/sys.c — the libc functions the shim wraps, looked up once with
 * dlsym(RTLD_NEXT) (Onload's sys.c pattern), each checked not to be our own.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shim.h"

struct shim_real real;

static void resolve_once(void)
{
  Dl_info self, other;
  void *me = (void *)&resolve_once;
  int have_self = dladdr(me, &self);
#define X(ret, name, args)                                                          \
  do {                                                                              \
    void *p = dlsym(RTLD_NEXT, #name);                                              \
    if (p && have_self && dladdr(p, &other) && other.dli_fbase == self.dli_fbase)   \
      p = NULL;   /* would call ourselves */                                        \
    real.name = (ret (*) args)p;                                                    \
  } while (0);
  SHIM_SYSCALLS(X)
#undef X
  if (!real.socket || !real.read || !real.write || !real.close || !real.fcntl) {
    static const char msg[] = "enoshim: cannot find libc's socket functions; aborting\n";
    ssize_t w = syscall(1 /* SYS_write */, 2, msg, sizeof(msg) - 1);
    (void)w;
    abort();
  }
}

void shim_resolve(void)
{
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, resolve_once);
}
