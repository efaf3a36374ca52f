/*
 * tund/crypt.c — ENO options and tcpcrypt for a connection.
 *
 * Foundation stage: every connection is plain TCP; the hooks below are the
 * fixed points where ENO (stack/eno.c) and tcpcrypt (stack/tcpcrypt.c) attach.
 */
#include <errno.h>
#include <string.h>

#include "conn.h"

void crypt_module_init(void) {}
void crypt_conn_free(struct conn *c) { (void)c; }
int  crypt_connect_setup(struct conn *c, u16_t port) { (void)c; (void)port; return 0; }
void crypt_listen_setup(struct conn *l) { (void)l; }

int crypt_start(struct conn *c)
{
  c->st.eno_state = TCPINC_STATE_DISABLED;
  return 0;
}

void crypt_on_acked(struct conn *c, u16_t len) { (void)c; (void)len; }
void crypt_tx_pump(struct conn *c) { (void)c; }
void crypt_rx_pump(struct conn *c) { (void)c; }
int  crypt_tx_all_acked(const struct conn *c) { (void)c; return 1; }
int  crypt_tx_fin_ready(struct conn *c) { (void)c; return 1; }
int  crypt_send_fin(struct conn *c) { (void)c; return 0; }
int  crypt_rx_fin_without_finp(struct conn *c) { (void)c; return 0; }

int crypt_setopt(struct conn *c, int name, const uint8_t *val, uint32_t len)
{
  (void)c; (void)name; (void)val; (void)len;
  return ENOPROTOOPT;
}

int crypt_getopt(struct conn *c, int name, uint8_t *val, uint32_t *len)
{
  (void)c; (void)name; (void)val; (void)len;
  return ENOPROTOOPT;
}

void crypt_status(struct conn *c, struct enoipc_status_entry *e) { (void)c; (void)e; }

int crypt_command(uint32_t cmd, uint64_t arg, char *out, size_t outlen)
{
  (void)cmd; (void)arg; (void)out; (void)outlen;
  return EINVAL;
}

void crypt_tick(struct conn *c) { (void)c; }
