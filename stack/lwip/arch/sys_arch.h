/* arch/sys_arch.h — NO_SYS=1: no threads, no semaphores. */
#ifndef ENOSHIM_ARCH_SYS_ARCH_H
#define ENOSHIM_ARCH_SYS_ARCH_H
typedef int sys_prot_t;
#endif
