/*
 * tund/pump.c — moving a connection's data between the program's rings and
 * lwIP, and ending the stream (FIN after the ring's last byte).
 *
 * Data path, plain TCP (tcpcrypt adds frames in tund/crypt.c):
 *   tx: the program writes into the tx ring; tund hands ring bytes to
 *       tcp_write() WITHOUT copying and advances tx_cons only when lwIP
 *       reports them acknowledged (sent callback): the ring is the send
 *       buffer, and retransmissions resend the very same bytes.
 *   rx: lwIP's pbufs are copied into the rx ring; tcp_recved() opens the
 *       window only for bytes that reached the ring, so a program that stops
 *       reading closes the window like a kernel socket would.
 * What lwIP delivered waits in the connection's rx queue until the ring
 * takes it (crypt.c reads frames from the same queue).
 */
#include <stdlib.h>

#include "lwip/tcp.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/sys.h"
#include "tund.h"
#include "conn.h"

static void conn_check_finished(struct conn *c);

/* ---- tx ---------------------------------------------------------------------- */

int conn_tx_all_acked(const struct conn *c)
{
  if (c->crypt)
    return crypt_tx_all_acked(c);
  return c->tx_cons == c->tx_read;
}

/* Nagle as Linux does it (Minshall's variant): a partial segment may leave
 * while no earlier partial segment is unacknowledged.  lwIP 2.1.3 keeps the
 * classic rule (hold it while anything at all is unacknowledged), which costs
 * request/response programs a delayed-ACK period per message.  snd_sml is
 * the end of the last segment that may have been partial. */
void conn_output(struct conn *c)
{
  struct tcp_pcb *pcb = c->pcb;
  if (!pcb)
    return;
  if (c->nodelay || !pcb->unsent || !TCP_SEQ_GEQ(pcb->lastack, c->snd_sml)) {
    tcp_output(pcb);
    return;
  }
  u32_t before = pcb->snd_nxt;
  tcp_nagle_disable(pcb);
  tcp_output(pcb);
  tcp_nagle_enable(pcb);
  if (pcb->snd_nxt != before && !pcb->unsent)
    c->snd_sml = pcb->snd_nxt;      /* the last one out may have been short */
}

/* Bytes the program published beyond tx_read, or -1 if it lied about tx_prod. */
int64_t conn_tx_avail(struct conn *c)
{
  int64_t a = enoshm_tx_avail_checked(c->shm, c->tx_size, c->tx_read, c->tx_cons);
  if (a < 0) {
    tund_log_limited(LOG_WARN_, "conn %llu: program wrote an impossible tx index; resetting",
                     (unsigned long long)c->serial);
    conn_abort(c, EIO);
  }
  return a;
}

static void conn_tx_pump_plain(struct conn *c)
{
  int wrote = 0;
  for (int round = 0; round < 2; round++) {
    int64_t avail = conn_tx_avail(c);
    if (avail < 0)
      return;
    while (avail > 0) {
      struct tcp_pcb *pcb = c->pcb;
      uint32_t room = pcb->snd_buf;
      if (pcb->snd_queuelen >= TCP_SND_QUEUELEN - 4 || room == 0)
        break;
      size_t pos = (size_t)(c->tx_read & (c->tx_size - 1));
      size_t n = (size_t)avail;
      if (n > c->tx_size - pos)
        n = c->tx_size - pos;
      if (n > room)
        n = room;
      if (n > 0xffff)
        n = 0xffff;
      u8_t flags = (n < (size_t)avail) ? TCP_WRITE_FLAG_MORE : 0;
      err_t e = tcp_write(pcb, c->tx_base + pos, (u16_t)n, flags);
      if (e == ERR_MEM)
        break;
      if (e != ERR_OK) {
        conn_abort(c, lwip_err_to_errno(e));
        return;
      }
      c->tx_read += n;
      c->tx_bytes += n;
      avail -= (int64_t)n;
      wrote = 1;
    }
    if (avail > 0)
      break;          /* lwIP is full: the sent callback resumes */
    /* Ring empty: ask for a wake-up, then look once more (the program may
     * have written after our check but before seeing the flag). */
    atomic_fetch_or(&c->shm->wants, ENOSHM_WANT_TX);
    atomic_thread_fence(memory_order_seq_cst);   /* flag, then look again */
  }
  if (wrote || c->pcb->unsent)
    conn_output(c);
}

void conn_tx_pump(struct conn *c)
{
  if (c->dead || !c->pcb || c->st.state != ENOSHM_S_ESTABLISHED || c->tx_shut_done)
    goto finish;
  if (c->crypt)
    crypt_tx_pump(c);
  else
    conn_tx_pump_plain(c);
  if (c->dead)
    return;
finish:
  if (!c->dead)
    conn_check_finished(c);
}

/* FIN after the ring's last byte, for shutdown(SHUT_WR) and for close().
 * After close() the pcb is handed to lwIP (tcp_close) and we only wait until
 * no queued segment references our ring. */
static void conn_check_finished(struct conn *c)
{
  if (!c->pcb || c->st.state != ENOSHM_S_ESTABLISHED)
    return;
  if (!c->shut_wr_req && !c->prog_closed)
    return;
  if (!c->tx_shut_done) {
    if (!c->crypt) {
      int64_t avail = enoshm_tx_avail_checked(c->shm, c->tx_size, c->tx_read, c->tx_cons);
      if (avail != 0)
        return;        /* still sending (or the index is bogus: the pump handles it) */
    } else if (!crypt_tx_fin_ready(c) || crypt_send_fin(c)) {
      return;          /* FINp frame pending; TCP FIN follows once it is written */
    }
    /* a FINp frame just queued is not output yet: the FIN below joins its
     * segment, and every path below outputs */
  }
  if (c->prog_closed && c->crypt && !c->fin_in) {
    /* tcpcrypt: the peer still owes its FINp frame, which is TCP data; a
     * tcp_close() now would answer it with RST.  Send our FIN and keep
     * reading (crypt.c resets if real data arrives, as the kernel would)
     * until the peer's FIN, bounded by crypt_tick(). */
    if (!c->tx_shut_done && tcp_shutdown(c->pcb, 0, 1) == ERR_OK) {
      c->tx_shut_done = 1;
      c->linger_since = sys_now();
    }
    tcp_output(c->pcb);
    return;
  }
  if (c->prog_closed) {
    struct tcp_pcb *pcb = c->pcb;
    int acked = conn_tx_all_acked(c);
    if (acked)
      pcb_detach(pcb);
    err_t e = tcp_close(pcb);     /* outputs the FIN (and a queued FINp) */
    if (e != ERR_OK) {
      if (acked)
        conn_setup_pcb(c, pcb);
      tcp_output(pcb);
      return;          /* out of memory: retried from the tick */
    }
    c->pcb = NULL;
    c->tx_shut_done = 1;
    c->closing = 1;
    if (acked)
      conn_release(c);
    return;
  }
  if (!c->tx_shut_done && tcp_shutdown(c->pcb, 0, 1) == ERR_OK) {
    c->tx_shut_done = 1;
    c->st.flags |= ENOSHM_F_TX_SHUT;
    conn_publish(c);
  }
  tcp_output(c->pcb);
}

/* ---- rx queue: pbuf chains as lwIP delivered them (each under 64 KiB, so
 * lwIP's 16-bit lengths hold), oldest first. */
int rxq_push(struct conn *c, struct pbuf *p)
{
  if (c->rxq_n == c->rxq_cap) {
    unsigned nc = c->rxq_cap ? c->rxq_cap * 2 : 8;
    struct pbuf **v = malloc(nc * sizeof(*v));
    if (!v)
      return -1;
    for (unsigned i = 0; i < c->rxq_n; i++)
      v[i] = c->rxq[(c->rxq_head + i) % c->rxq_cap];
    free(c->rxq);
    c->rxq = v;
    c->rxq_cap = nc;
    c->rxq_head = 0;
  }
  c->rxq[(c->rxq_head + c->rxq_n) % c->rxq_cap] = p;
  c->rxq_n++;
  c->rxq_bytes += p->tot_len;
  return 0;
}

struct pbuf *rxq_front(struct conn *c)
{
  return c->rxq_n ? c->rxq[c->rxq_head] : NULL;
}

/* Mark n bytes of the front chain consumed (n <= what is left of it). */
void rxq_consume(struct conn *c, size_t n)
{
  struct pbuf *p = c->rxq[c->rxq_head];
  c->rxq_off += n;
  c->rxq_bytes -= n;
  if (c->rxq_off >= p->tot_len) {
    pbuf_free(p);
    c->rxq_head = (c->rxq_head + 1) % c->rxq_cap;
    c->rxq_n--;
    c->rxq_off = 0;
  }
}

void rxq_free_all(struct conn *c)
{
  while (c->rxq_n) {
    pbuf_free(c->rxq[c->rxq_head]);
    c->rxq_head = (c->rxq_head + 1) % c->rxq_cap;
    c->rxq_n--;
  }
  free(c->rxq);
  c->rxq = NULL;
  c->rxq_cap = 0;
  c->rxq_off = 0;
  c->rxq_bytes = 0;
}

/* ---- rx ---------------------------------------------------------------------- */

/* Plain rx: copy queued pbufs into the ring as space allows. */
static void conn_rx_pump_plain(struct conn *c)
{
  uint64_t copied_total = 0;
  for (int round = 0; round < 2 && c->rxq_n; round++) {
    int64_t space = enoshm_rx_space_checked(c->shm, c->rx_size, c->rx_prod);
    if (space < 0) {
      tund_log_limited(LOG_WARN_, "conn %llu: program wrote an impossible rx index; resetting",
                       (unsigned long long)c->serial);
      conn_abort(c, EIO);
      return;
    }
    while (c->rxq_n && space > 0) {
      struct pbuf *p = rxq_front(c);
      size_t left = p->tot_len - c->rxq_off;
      size_t n = left < (uint64_t)space ? left : (size_t)space;
      struct enoshm_span sp;
      enoshm_span_make(&sp, c->rx_base, c->rx_size, c->rx_prod, n);
      size_t done = 0, off = c->rxq_off;
      for (struct pbuf *q = p; q && done < n; q = q->next) {
        if (off >= q->len) {
          off -= q->len;
          continue;
        }
        size_t k = q->len - off;
        if (k > n - done)
          k = n - done;
        enoshm_span_write(&sp, done, (const uint8_t *)q->payload + off, k);
        done += k;
        off = 0;
      }
      c->rx_prod += n;
      space -= (int64_t)n;
      copied_total += n;
      rxq_consume(c, n);
    }
    if (copied_total)
      atomic_store_explicit(&c->shm->rx_prod, c->rx_prod, memory_order_release);
    if (!c->rxq_n)
      break;
    /* Ring full: ask for a wake-up, then look once more. */
    atomic_fetch_or(&c->shm->wants, ENOSHM_WANT_RXSPACE);
    atomic_thread_fence(memory_order_seq_cst);
  }
  if (copied_total) {
    for (uint64_t left = copied_total; left > 0;) {
      u16_t k = left > 0xffff ? 0xffff : (u16_t)left;
      if (c->pcb)
        tcp_recved(c->pcb, k);
      left -= k;
    }
    c->rx_bytes += copied_total;
    conn_rx_notify(c);
  }
}

void conn_rx_pump(struct conn *c)
{
  if (c->dead || c->st.state < ENOSHM_S_CONNECTING)
    return;
  if (c->st.state != ENOSHM_S_ESTABLISHED && !c->crypt)
    return;
  if (c->crypt)
    crypt_rx_pump(c);
  else if (c->rxq_n)
    conn_rx_pump_plain(c);
  if (c->dead)
    return;
  if (!c->rxq_n && c->fin_in && c->st.state == ENOSHM_S_ESTABLISHED && !c->eof_published) {
    if (c->crypt && crypt_rx_fin_without_finp(c))
      return;
    conn_publish_eof(c);
  }
  if (c->prog_closed && c->fin_in && !c->closing && !c->dead)
    conn_check_finished(c);        /* the lingering close can finish now */
  if (c->draining && c->eof_published && !c->dead) {
    /* TCP ended earlier (on_err ERR_CLSD) and everything is in the ring */
    c->st.state = ENOSHM_S_CLOSED;
    c->st.flags |= ENOSHM_F_DEAD;
    conn_publish(c);
    conn_release(c);
  }
}
