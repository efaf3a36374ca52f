/*
 * enorun/elfcheck.h — will a program load libenoshim.so?
 *
 * LD_PRELOAD works only in a dynamically linked program of the library's
 * own ELF class and machine, started without secure-execution mode
 * (AT_SECURE: set-user-ID / set-group-ID to another user, file
 * capabilities), and it covers only calls that go through libc: Go
 * programs make their system calls themselves.  enorun asks these
 * questions before exec and warns (or refuses, with --eno-mandatory).
 * Pure file inspection: no exec, no dynamic loader.
 */
#ifndef ENORUN_ELFCHECK_H
#define ENORUN_ELFCHECK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct elf_facts {
  int elf;              /* 1: an ELF file (the rest below is valid) */
  int elfclass;         /* ELFCLASS32 or ELFCLASS64 */
  int data;             /* ELFDATA2LSB or ELFDATA2MSB */
  int machine;          /* e_machine */
  int type;             /* e_type */
  int has_interp;       /* PT_INTERP present: the dynamic loader runs */
  int go;               /* a Go program (.go.buildinfo, .note.go.buildid) */
  int needs_asan;       /* DT_NEEDED names libasan (a sanitizer build) */
  int needs_ubsan;      /* DT_NEEDED names libubsan */
  char asan[64];        /* that DT_NEEDED name, e.g. "libasan.so.8" */
  char ubsan[64];
};

/* Inspect the open file fd.  0 with *f filled (f->elf = 0 for a file that
 * is not ELF), -1 with errno on a read error.  A truncated or malformed
 * ELF file is reported as ELF with what could be read. */
int elf_inspect_fd(int fd, struct elf_facts *f);
int elf_inspect_path(const char *path, struct elf_facts *f);

/* "#!" line of a script: the interpreter path and its optional single
 * argument (both NUL-terminated, cut to their buffers).  1 if the file
 * starts with "#!", 0 if not, -1 with errno on a read error. */
int script_interp(const char *path, char *interp, size_t ilen, char *arg, size_t alen);

/* Why a program will not load the library: NULL if it will, else a short
 * reason ("is statically linked", "is a 32-bit program (libenoshim.so is
 * 64-bit)", ...) written into buf. */
const char *elf_why_not(const struct elf_facts *prog, const struct elf_facts *lib,
                        char *buf, size_t len);

/* Secure-execution mode (AT_SECURE) for this process exec'ing path with
 * stat st: set-user-ID/set-group-ID to someone else, or file capabilities,
 * on a file system mounted without nosuid and with no_new_privs off.
 * Writes the reason into buf and returns it, or NULL. */
const char *exec_is_secure(const char *path, const struct stat *st, char *buf, size_t len);

#endif
