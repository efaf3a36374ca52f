/*
 * tund/priv.c — give up privilege once the TUN device is configured.
 *
 * One straight sequence (OpenNTPD style), each step checked:
 *   1. optionally switch to the configured user (setgroups, setgid, setuid);
 *   2. clear every capability: effective, permitted, inheritable, ambient,
 *      and the bounding set as far as we may;
 *   3. no_new_privs, so that nothing exec'd later regains any.
 * tund needs no privilege after this: its TUN fd stays open, the control
 * socket is created later with the user's own rights.
 */
#include <errno.h>
#include <grp.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "tund.h"

int priv_drop(const struct tund_config *c)
{
  cap_t caps;

  if (c->user_set) {
    if (setgroups(0, NULL) && errno != EPERM) {
      log_err("setgroups: %s", strerror(errno));
      return -1;
    }
    if (setgid(c->gid) || setuid(c->uid)) {
      log_err("switching to uid %u gid %u: %s", (unsigned)c->uid, (unsigned)c->gid, strerror(errno));
      return -1;
    }
  }

  /* Bounding set: needs CAP_SETPCAP; absent in most sandboxes, not fatal
   * because no_new_privs below stops any gain through exec anyway. */
  for (int cap = 0; cap <= CAP_LAST_CAP; cap++)
    if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) == 1)
      (void)prctl(PR_CAPBSET_DROP, cap, 0, 0, 0);

  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) && errno != EINVAL) {
    log_err("clearing ambient capabilities: %s", strerror(errno));
    return -1;
  }
  caps = cap_init();          /* all clear */
  if (!caps || cap_set_proc(caps)) {
    log_err("dropping capabilities: %s", strerror(errno));
    if (caps)
      cap_free(caps);
    return -1;
  }
  cap_free(caps);

  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) {
    log_err("no_new_privs: %s", strerror(errno));
    return -1;
  }

  /* Check: nothing left. */
  caps = cap_get_proc();
  if (caps) {
    cap_flag_value_t v = CAP_CLEAR;
    cap_get_flag(caps, CAP_NET_ADMIN, CAP_EFFECTIVE, &v);
    cap_free(caps);
    if (v != CAP_CLEAR) {
      log_err("CAP_NET_ADMIN still effective after dropping");
      return -1;
    }
  }
  return 0;
}
