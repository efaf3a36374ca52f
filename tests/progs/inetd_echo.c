/*
 * inetd_echo — an inetd-style echo server written with stdio: the
 * connection is its stdin and stdout (socat EXEC:...,nofork, inetd, a
 * listener that forks, dup2s and execs it).  It says a greeting with
 * printf, echoes every line with fgets/fputs, and at EOF says how many
 * lines and bytes it echoed, from an atexit handler (the output written at
 * exit, by exit()'s flush of stdout).
 *
 *   inetd_echo [-l] [-f]   -l: fflush after every line (line-at-a-time
 *                          peers); otherwise stdout keeps its default (full)
 *                          buffering.  -f: its own streams made with
 *                          fdopen() on dup()s of fds 0 and 1 instead of
 *                          stdin and stdout
 *
 * Lines longer than the buffer come through in pieces, unchanged.  Exit
 * status 0, or 1 with a message on stderr if stdin or stdout failed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static unsigned long lines, bytes;
static FILE *in, *out;

static void bye(void)
{
  fprintf(out, "bye: %lu lines, %lu bytes\n", lines, bytes);
  if (out != stdout)
    fclose(out);
}

int main(int argc, char **argv)
{
  int flush_each = 0, own = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "-l"))
      flush_each = 1;
    else if (!strcmp(argv[i], "-f"))
      own = 1;
  }
  in = stdin;
  out = stdout;
  if (own) {
    in = fdopen(dup(0), "r");
    out = fdopen(dup(1), "w");
    if (!in || !out) {
      perror("inetd_echo: fdopen");
      return 1;
    }
  }
  char buf[8192];
  fprintf(out, "hello from inetd_echo\n");
  if (flush_each)
    fflush(out);
  atexit(bye);
  while (fgets(buf, sizeof(buf), in)) {
    size_t n = strlen(buf);
    if (n && buf[n - 1] == '\n')
      lines++;
    bytes += n;
    if (fputs(buf, out) == EOF) {
      perror("inetd_echo: fputs");
      return 1;
    }
    if (flush_each && fflush(out) == EOF) {
      perror("inetd_echo: fflush");
      return 1;
    }
  }
  if (ferror(in)) {
    perror("inetd_echo: fgets");
    return 1;
  }
  return 0;                   /* bye() runs, then exit() flushes the stream */
}
