/* arch/cc.h — lwIP platform definitions for Linux user space (tund). */
#ifndef ENOSHIM_ARCH_CC_H
#define ENOSHIM_ARCH_CC_H

#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <errno.h>
#include <sys/time.h>

#define LWIP_ERRNO_STDINCLUDE   1
#define LWIP_NO_CTYPE_H         0
#define LWIP_TIMEVAL_PRIVATE    0

/* lwIP's random numbers (ports, IPv6 ids): libsodium, see lwip_glue.c. */
uint32_t enoshim_lwip_rand(void);
#define LWIP_RAND()             enoshim_lwip_rand()

/* An lwIP assertion is an internal bug of tund: log it and abort so that the
 * core shows where.  Nothing a peer or a program sends can reach one. */
void enoshim_lwip_assert(const char *msg, const char *file, int line);
#define LWIP_PLATFORM_ASSERT(x) enoshim_lwip_assert((x), __FILE__, __LINE__)
#define LWIP_PLATFORM_DIAG(x)   do { printf x; } while (0)

#endif
