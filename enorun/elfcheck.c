/*
 * enorun/elfcheck.c — will a program load libenoshim.so? (elfcheck.h)
 *
 * Reads the ELF header, the program headers (PT_INTERP: without it no
 * dynamic loader runs, so nothing is preloaded — a static executable or a
 * static PIE) and the section headers (the section names that mark a Go
 * program; the DT_NEEDED entries of the library itself, to find a
 * sanitizer runtime that must be preloaded before it).  Both ELF classes,
 * in the host's byte order; a file of the other byte order is only told
 * apart.  Every offset read from the file is bounded by the file's size.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "elfcheck.h"

#define HOST_DATA (__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ ? ELFDATA2LSB : ELFDATA2MSB)
#define MAX_HEADERS 4096          /* more program or section headers: not looked at */

struct elf_file {
  int fd;
  off_t size;
  int is64;
};

/* n bytes at off, all inside the file */
static int rd(const struct elf_file *e, uint64_t off, void *buf, size_t n)
{
  if (off > (uint64_t)e->size || n > (uint64_t)e->size - off)
    return -1;
  ssize_t r = pread(e->fd, buf, n, (off_t)off);
  return r == (ssize_t)n ? 0 : -1;
}

/* One section header in a class-independent form. */
struct shdr {
  uint32_t name, type, link;
  uint64_t offset, size, entsize;
};

static int rd_shdr(const struct elf_file *e, uint64_t off, struct shdr *s)
{
  if (e->is64) {
    Elf64_Shdr h;
    if (rd(e, off, &h, sizeof(h)))
      return -1;
    *s = (struct shdr){ h.sh_name, h.sh_type, h.sh_link, h.sh_offset, h.sh_size, h.sh_entsize };
  } else {
    Elf32_Shdr h;
    if (rd(e, off, &h, sizeof(h)))
      return -1;
    *s = (struct shdr){ h.sh_name, h.sh_type, h.sh_link, h.sh_offset, h.sh_size, h.sh_entsize };
  }
  return 0;
}

/* A NUL-terminated string at strtab offset `at` (cut to len - 1). */
static int rd_str(const struct elf_file *e, const struct shdr *strtab, uint64_t at, char *out, size_t len)
{
  if (at >= strtab->size || len == 0)
    return -1;
  uint64_t n = strtab->size - at;
  if (n > len - 1)
    n = len - 1;
  if (rd(e, strtab->offset + at, out, (size_t)n))
    return -1;
  out[n] = 0;
  return 0;
}

static void note_needed(struct elf_facts *f, const char *name)
{
  if (!strncmp(name, "libasan.so", 10)) {
    f->needs_asan = 1;
    snprintf(f->asan, sizeof(f->asan), "%s", name);
  } else if (!strncmp(name, "libubsan.so", 11)) {
    f->needs_ubsan = 1;
    snprintf(f->ubsan, sizeof(f->ubsan), "%s", name);
  }
}

/* DT_NEEDED entries of a SHT_DYNAMIC section */
static void scan_dynamic(const struct elf_file *e, const struct shdr *dyn, const struct shdr *strtab,
                         struct elf_facts *f)
{
  size_t esz = e->is64 ? sizeof(Elf64_Dyn) : sizeof(Elf32_Dyn);
  uint64_t n = dyn->size / esz;
  if (n > MAX_HEADERS)
    n = MAX_HEADERS;
  for (uint64_t i = 0; i < n; i++) {
    int64_t tag;
    uint64_t val;
    if (e->is64) {
      Elf64_Dyn d;
      if (rd(e, dyn->offset + i * esz, &d, sizeof(d)))
        return;
      tag = d.d_tag;
      val = d.d_un.d_val;
    } else {
      Elf32_Dyn d;
      if (rd(e, dyn->offset + i * esz, &d, sizeof(d)))
        return;
      tag = d.d_tag;
      val = d.d_un.d_val;
    }
    if (tag == DT_NULL)
      return;
    char name[64];
    if (tag == DT_NEEDED && rd_str(e, strtab, val, name, sizeof(name)) == 0)
      note_needed(f, name);
  }
}

static void scan_sections(const struct elf_file *e, uint64_t shoff, unsigned shentsize, unsigned shnum,
                          unsigned shstrndx, struct elf_facts *f)
{
  size_t want = e->is64 ? sizeof(Elf64_Shdr) : sizeof(Elf32_Shdr);
  if (!shoff || shentsize < want || shnum == 0 || shnum > MAX_HEADERS)
    return;
  struct shdr names;
  int have_names = shstrndx < shnum && rd_shdr(e, shoff + (uint64_t)shstrndx * shentsize, &names) == 0 &&
                   names.type == SHT_STRTAB;
  for (unsigned i = 0; i < shnum; i++) {
    struct shdr s;
    if (rd_shdr(e, shoff + (uint64_t)i * shentsize, &s))
      return;
    char nm[32];
    if (have_names && rd_str(e, &names, s.name, nm, sizeof(nm)) == 0 &&
        (!strcmp(nm, ".go.buildinfo") || !strcmp(nm, ".note.go.buildid") || !strcmp(nm, ".gopclntab")))
      f->go = 1;
    struct shdr strtab;
    if (s.type == SHT_DYNAMIC && s.link < shnum &&
        rd_shdr(e, shoff + (uint64_t)s.link * shentsize, &strtab) == 0 && strtab.type == SHT_STRTAB)
      scan_dynamic(e, &s, &strtab, f);
  }
}

int elf_inspect_fd(int fd, struct elf_facts *f)
{
  struct stat st;
  unsigned char ident[EI_NIDENT];
  memset(f, 0, sizeof(*f));
  if (fstat(fd, &st))
    return -1;
  struct elf_file e = { .fd = fd, .size = st.st_size };
  if (rd(&e, 0, ident, sizeof(ident)) || memcmp(ident, ELFMAG, SELFMAG))
    return 0;                               /* not ELF (or shorter than its magic) */
  f->elf = 1;
  f->elfclass = ident[EI_CLASS];
  f->data = ident[EI_DATA];
  if (f->data != HOST_DATA || (f->elfclass != ELFCLASS32 && f->elfclass != ELFCLASS64))
    return 0;                               /* told apart by class / byte order alone */
  e.is64 = f->elfclass == ELFCLASS64;

  uint64_t phoff, shoff;
  unsigned phentsize, phnum, shentsize, shnum, shstrndx;
  if (e.is64) {
    Elf64_Ehdr h;
    if (rd(&e, 0, &h, sizeof(h)))
      return 0;
    f->type = h.e_type;
    f->machine = h.e_machine;
    phoff = h.e_phoff, phentsize = h.e_phentsize, phnum = h.e_phnum;
    shoff = h.e_shoff, shentsize = h.e_shentsize, shnum = h.e_shnum, shstrndx = h.e_shstrndx;
  } else {
    Elf32_Ehdr h;
    if (rd(&e, 0, &h, sizeof(h)))
      return 0;
    f->type = h.e_type;
    f->machine = h.e_machine;
    phoff = h.e_phoff, phentsize = h.e_phentsize, phnum = h.e_phnum;
    shoff = h.e_shoff, shentsize = h.e_shentsize, shnum = h.e_shnum, shstrndx = h.e_shstrndx;
  }

  size_t pwant = e.is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr);
  if (phoff && phentsize >= pwant && phnum <= MAX_HEADERS) {
    for (unsigned i = 0; i < phnum; i++) {
      uint32_t type;
      if (rd(&e, phoff + (uint64_t)i * phentsize, &type, sizeof(type)))   /* p_type: first in both */
        break;
      if (type == PT_INTERP)
        f->has_interp = 1;
    }
  }
  scan_sections(&e, shoff, shentsize, shnum, shstrndx, f);
  return 0;
}

int elf_inspect_path(const char *path, struct elf_facts *f)
{
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -1;
  int r = elf_inspect_fd(fd, f);
  int e = errno;
  close(fd);
  errno = e;
  return r;
}

int script_interp(const char *path, char *interp, size_t ilen, char *arg, size_t alen)
{
  char line[256];
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -1;
  ssize_t n = read(fd, line, sizeof(line) - 1);
  close(fd);
  if (n < 0)
    return -1;
  line[n] = 0;
  if (n < 2 || line[0] != '#' || line[1] != '!')
    return 0;
  char *p = line + 2, *end = strchr(p, '\n');
  if (end)
    *end = 0;
  /* as the kernel reads it (binfmt_script): the interpreter, then the rest
   * of the line (trimmed) as one argument */
  while (*p == ' ' || *p == '\t')
    p++;
  char *q = p;
  while (*q && *q != ' ' && *q != '\t')
    q++;
  char *rest = q;
  if (*rest)
    *rest++ = 0;
  while (*rest == ' ' || *rest == '\t')
    rest++;
  size_t rl = strlen(rest);
  while (rl && (rest[rl - 1] == ' ' || rest[rl - 1] == '\t' || rest[rl - 1] == '\r'))
    rest[--rl] = 0;
  snprintf(interp, ilen, "%s", p);
  snprintf(arg, alen, "%s", rest);
  return 1;
}

static const char *machine_name(int m)
{
  switch (m) {
  case EM_386: return "i386";
  case EM_X86_64: return "x86-64";
  case EM_ARM: return "ARM";
  case EM_AARCH64: return "AArch64";
  case EM_RISCV: return "RISC-V";
  case EM_PPC64: return "PowerPC 64";
  case EM_S390: return "S/390";
  case EM_MIPS: return "MIPS";
  default: return "another";
  }
}

const char *elf_why_not(const struct elf_facts *prog, const struct elf_facts *lib, char *buf, size_t len)
{
  if (!prog->elf)
    return NULL;                 /* not an ELF file: the caller looks further (a script) */
  if (prog->elfclass != lib->elfclass) {
    snprintf(buf, len, "is a %d-bit program (libenoshim.so is %d-bit)",
             prog->elfclass == ELFCLASS32 ? 32 : 64, lib->elfclass == ELFCLASS32 ? 32 : 64);
    return buf;
  }
  if (prog->data != lib->data) {
    snprintf(buf, len, "is a program of the other byte order (%s-endian)",
             prog->data == ELFDATA2MSB ? "big" : "little");
    return buf;
  }
  if (prog->machine != lib->machine) {
    snprintf(buf, len, "is a program for %s machines (libenoshim.so is for %s)",
             machine_name(prog->machine), machine_name(lib->machine));
    return buf;
  }
  if (!prog->has_interp) {
    snprintf(buf, len, "is statically linked");
    return buf;
  }
  if (prog->go) {
    snprintf(buf, len, "is a Go program (Go makes its system calls itself, not through libc)");
    return buf;
  }
  return NULL;
}

const char *exec_is_secure(const char *path, const struct stat *st, char *buf, size_t len)
{
  struct statvfs vfs;
  if (statvfs(path, &vfs) == 0 && (vfs.f_flag & ST_NOSUID))
    return NULL;                 /* set-ID bits and file capabilities are ignored there */
  if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1)
    return NULL;                 /* exec gains nothing under no_new_privs */
  if ((st->st_mode & S_ISUID) && st->st_uid != getuid()) {
    snprintf(buf, len, "is set-user-ID (the dynamic loader ignores LD_PRELOAD for it)");
    return buf;
  }
  if ((st->st_mode & S_ISGID) && (st->st_mode & S_IXGRP) && st->st_gid != getgid()) {
    snprintf(buf, len, "is set-group-ID (the dynamic loader ignores LD_PRELOAD for it)");
    return buf;
  }
  if (getuid() != 0 && getxattr(path, "security.capability", NULL, 0) > 0) {
    snprintf(buf, len, "has file capabilities (the dynamic loader ignores LD_PRELOAD for it)");
    return buf;
  }
  return NULL;
}
