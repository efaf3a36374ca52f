/*
 * tests/unit/test_elfcheck.c — enorun/elfcheck.c: which programs will not
 * load libenoshim.so, told from hand-built ELF headers (both classes, both
 * byte orders, with and without PT_INTERP, a Go section), this test's own
 * executable, scripts' "#!" lines, and files that are not ELF or are cut
 * short (never a crash, never a read past the end).
 */
#include <criterion/criterion.h>
#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../enorun/elfcheck.c"

static char path[64];

static void put(const void *p, size_t n)
{
  snprintf(path, sizeof(path), "/tmp/elfcheck.XXXXXX");
  int fd = mkstemp(path);
  cr_assert(fd >= 0);
  cr_assert(write(fd, p, n) == (ssize_t)n);
  close(fd);
}

static void done(void)
{
  if (path[0])
    unlink(path);
}

/* an ELF64 executable for x86-64: one program header (PT_INTERP or
 * PT_LOAD), and optionally sections with a ".go.buildinfo" name */
static size_t elf64(uint8_t *buf, int interp, int go, int machine, int data)
{
  memset(buf, 0, 1024);
  Elf64_Ehdr *h = (Elf64_Ehdr *)buf;
  memcpy(h->e_ident, ELFMAG, SELFMAG);
  h->e_ident[EI_CLASS] = ELFCLASS64;
  h->e_ident[EI_DATA] = (unsigned char)data;
  h->e_ident[EI_VERSION] = EV_CURRENT;
  h->e_type = ET_EXEC;
  h->e_machine = (Elf64_Half)machine;
  h->e_version = EV_CURRENT;
  h->e_phoff = sizeof(*h);
  h->e_phentsize = sizeof(Elf64_Phdr);
  h->e_phnum = 1;
  h->e_ehsize = sizeof(*h);
  Elf64_Phdr *ph = (Elf64_Phdr *)(buf + sizeof(*h));
  ph->p_type = interp ? PT_INTERP : PT_LOAD;
  size_t end = sizeof(*h) + sizeof(*ph);
  if (go) {
    /* shstrtab at 256, three section headers at 512: null, .go.buildinfo, .shstrtab */
    static const char names[] = "\0.go.buildinfo\0.shstrtab";
    memcpy(buf + 256, names, sizeof(names));
    Elf64_Shdr *sh = (Elf64_Shdr *)(buf + 512);
    sh[1].sh_name = 1;
    sh[1].sh_type = SHT_PROGBITS;
    sh[2].sh_name = 15;
    sh[2].sh_type = SHT_STRTAB;
    sh[2].sh_offset = 256;
    sh[2].sh_size = sizeof(names);
    h->e_shoff = 512;
    h->e_shentsize = sizeof(Elf64_Shdr);
    h->e_shnum = 3;
    h->e_shstrndx = 2;
    end = 512 + 3 * sizeof(Elf64_Shdr);
  }
  return end;
}

static struct elf_facts self_facts(void)
{
  struct elf_facts f;
  cr_assert_eq(elf_inspect_path("/proc/self/exe", &f), 0);
  return f;
}

Test(elfcheck, own_executable_is_dynamic, .fini = done)
{
  struct elf_facts f = self_facts();
  char why[200];
  cr_assert(f.elf);
  cr_assert_eq(f.elfclass, ELFCLASS64);
  cr_assert(f.has_interp, "a test program is dynamically linked");
  cr_assert(!f.go);
  cr_assert_null(elf_why_not(&f, &f, why, sizeof(why)));
}

Test(elfcheck, static_and_dynamic, .fini = done)
{
  uint8_t buf[1024];
  struct elf_facts lib = self_facts(), f;
  char why[200];
  put(buf, elf64(buf, 1, 0, lib.machine, ELFDATA2LSB));
  cr_assert_eq(elf_inspect_path(path, &f), 0);
  cr_assert(f.elf && f.has_interp);
  cr_assert_null(elf_why_not(&f, &lib, why, sizeof(why)));
  done();
  put(buf, elf64(buf, 0, 0, lib.machine, ELFDATA2LSB));
  cr_assert_eq(elf_inspect_path(path, &f), 0);
  cr_assert(f.elf && !f.has_interp);
  cr_assert_str_eq(elf_why_not(&f, &lib, why, sizeof(why)), "is statically linked");
}

Test(elfcheck, go_program, .fini = done)
{
  uint8_t buf[1024];
  struct elf_facts lib = self_facts(), f;
  char why[200];
  put(buf, elf64(buf, 1, 1, lib.machine, ELFDATA2LSB));
  cr_assert_eq(elf_inspect_path(path, &f), 0);
  cr_assert(f.go);
  cr_assert(strstr(elf_why_not(&f, &lib, why, sizeof(why)), "is a Go program"));
}

Test(elfcheck, other_class_machine_byte_order, .fini = done)
{
  uint8_t buf[1024];
  struct elf_facts lib = self_facts(), f;
  char why[200];
  /* 32-bit */
  memset(buf, 0, sizeof(buf));
  Elf32_Ehdr *h = (Elf32_Ehdr *)buf;
  memcpy(h->e_ident, ELFMAG, SELFMAG);
  h->e_ident[EI_CLASS] = ELFCLASS32;
  h->e_ident[EI_DATA] = ELFDATA2LSB;
  h->e_type = ET_EXEC;
  h->e_machine = EM_386;
  put(buf, sizeof(*h));
  cr_assert_eq(elf_inspect_path(path, &f), 0);
  cr_assert_str_eq(elf_why_not(&f, &lib, why, sizeof(why)), "is a 32-bit program (libenoshim.so is 64-bit)");
  done();
  /* another machine */
  put(buf, elf64(buf, 1, 0, EM_AARCH64 == lib.machine ? EM_X86_64 : EM_AARCH64, ELFDATA2LSB));
  cr_assert_eq(elf_inspect_path(path, &f), 0);
  cr_assert(strstr(elf_why_not(&f, &lib, why, sizeof(why)), "machines (libenoshim.so is for"));
  done();
  /* the other byte order: told apart by the identification bytes alone */
  put(buf, elf64(buf, 1, 0, lib.machine, ELFDATA2MSB));
  cr_assert_eq(elf_inspect_path(path, &f), 0);
  cr_assert(strstr(elf_why_not(&f, &lib, why, sizeof(why)), "other byte order"));
}

Test(elfcheck, not_elf_and_truncated, .fini = done)
{
  uint8_t buf[1024];
  struct elf_facts f;
  put("#!/bin/sh\necho\n", 15);
  cr_assert_eq(elf_inspect_path(path, &f), 0);
  cr_assert(!f.elf);
  done();
  put("\x7f" "EL", 3);
  cr_assert_eq(elf_inspect_path(path, &f), 0);
  cr_assert(!f.elf);
  done();
  /* every prefix of a valid header, and garbage offsets: no crash */
  size_t n = elf64(buf, 1, 1, EM_X86_64, ELFDATA2LSB);
  for (size_t k = 0; k <= n; k += 7) {
    put(buf, k);
    cr_assert_eq(elf_inspect_path(path, &f), 0);
    done();
  }
  Elf64_Ehdr *h = (Elf64_Ehdr *)buf;
  h->e_phoff = ~0ull - 8;
  h->e_shoff = ~0ull - 100;
  h->e_shnum = 60000;
  put(buf, n);
  cr_assert_eq(elf_inspect_path(path, &f), 0);
  cr_assert(f.elf && !f.has_interp && !f.go);
  srand(1);
  for (int round = 0; round < 200; round++) {
    done();
    n = elf64(buf, 1, 1, EM_X86_64, ELFDATA2LSB);
    for (int i = 0; i < 8; i++)
      buf[16 + rand() % (int)(n - 16)] = (uint8_t)rand();
    put(buf, n);
    cr_assert_eq(elf_inspect_path(path, &f), 0);
  }
}

Test(elfcheck, script_lines, .fini = done)
{
  char interp[256], arg[256];
  put("#!/usr/bin/env -S python3 -u\nprint()\n", 38);
  cr_assert_eq(script_interp(path, interp, sizeof(interp), arg, sizeof(arg)), 1);
  cr_assert_str_eq(interp, "/usr/bin/env");
  cr_assert_str_eq(arg, "-S python3 -u");
  done();
  put("#!  /bin/sh  \n", 14);
  cr_assert_eq(script_interp(path, interp, sizeof(interp), arg, sizeof(arg)), 1);
  cr_assert_str_eq(interp, "/bin/sh");
  cr_assert_str_eq(arg, "");
  done();
  put("echo no\n", 8);
  cr_assert_eq(script_interp(path, interp, sizeof(interp), arg, sizeof(arg)), 0);
}

Test(elfcheck, secure_exec, .fini = done)
{
  char why[200];
  struct stat st;
  put("x", 1);
  cr_assert_eq(stat(path, &st), 0);
  cr_assert_null(exec_is_secure(path, &st, why, sizeof(why)));
  st.st_mode |= S_ISUID;
  st.st_uid = getuid() + 1;
  const char *w = exec_is_secure(path, &st, why, sizeof(why));
  /* on a nosuid /tmp the kernel ignores set-ID bits: nothing to say */
  if (w)
    cr_assert(strstr(w, "set-user-ID"));
  st.st_uid = getuid();
  cr_assert_null(exec_is_secure(path, &st, why, sizeof(why)), "set-user-ID to oneself changes nothing");
}
