/*
 * readiness.pml — the readiness hand-shake between tund and a program's
 * socket (include/enoshim/shm.h, "Readiness hand-shake"), modelled statement
 * by statement after the code:
 *
 *   program, reader thread   shim/io.c   io_recv(), rx_settle(), tok_wait(),
 *                                        tok_drain(), ring_doorbell() ->
 *                                        shim/ctl.c bell_ring()
 *   program, writer thread   shim/io.c   io_send(), tx_fill_step(),
 *                                        pair_write(), io_fill(),
 *                                        io_wait_writable(); shim/sock.c
 *                                        sock_connect()
 *   tund (one thread)        tund/progend.c conn_t_event(), conn_kick(),
 *                            conn_rx_pump_plain(),
 *                            conn_rx_notify(), conn_publish_eof(),
 *                            conn_tx_pump_plain(), conn_update_writable(),
 *                            conn_drain_t(), conn_bypass_check(), on_recv(),
 *                            on_sent(), conn_established(),
 *                            conn_run_pending(); tund/loop.c loop_run() (one
 *                            turn: events, then the pending list);
 *                            tund/client.c ENOIPC_KICK
 *
 * The socketpair is two bounded byte queues kept as counters (ntok: token
 * bytes tund -> program, a grant of GRANT at a time; p2t: filler and wait
 * bytes program -> tund, PCAP units before the program's end is full; the
 * shim declares each in `decl` (p2t_decl) before writing it); the doorbell
 * connection (ENOIPC_KICK, shim/ctl.c bell_ring) is a FIFO channel.
 * The rings are counters (indices grow from 0; the ring size is RXN / TXN).
 * epoll on tund's end is edge-triggered: each write by the program queues an
 * edge; when tund's epoll_wait collects it the kernel re-polls the fd and
 * reports nothing if the bytes were already read (ep_send_events()), so an
 * edge whose bytes tund drained meanwhile is lost — the model keeps that.
 *
 * The peer (network) sends NRX bytes and a FIN, limited by a receive window
 * of WND bytes that tund holds outside the ring (lwIP's window reopens only
 * for bytes copied into the ring, tcp_recved()); it acknowledges every byte
 * tund hands to lwIP (at most INFL in flight).
 *
 * Memory model: sequentially consistent, except with -DTSO, where the
 * reader thread's release store of rx_cons sits in a store buffer (x86-TSO;
 * ARM is weaker still) until a locked instruction, a seq_cst fence or a
 * system call of that thread drains it.  That store is the one the program
 * follows with a plain load of a location tund writes before a re-check
 * (io.c io_recv(): "atomic_load_explicit(&m->wants, memory_order_relaxed)
 * & ENOSHM_WANT_RXSPACE"); io_recv() has a seq_cst fence between the two
 * since commit 145e38e, and -DNO_RX_FENCE models the code before it.  Every
 * other program store is followed by a fence, a locked RMW or a seq_cst
 * store before the load that matters, and tund's stores of rx_prod/tx_cons
 * are followed by a fence, a CAS, a locked RMW or a system call.
 *
 * Build switches (tests/spin/run.sh uses them):
 *   -DNRX, -DNTX, -DRXN, -DTXN, -DLOW, -DWND, -DINFL, -DPCAP  sizes (below)
 *   -DNO_CONNECT   start established (skip sock_connect()'s filler phase)
 *   -DNOFIN        the peer sends its bytes and no FIN (a request waiting for
 *                  its answer): a byte left unreadable is not rescued by the
 *                  EOF's grant; the reader stops once it has them all
 *   -DPAIR_DOORBELL  a doorbell may also be a byte on the program's end of
 *                  the pair (ring_doorbell()'s way when there is no doorbell
 *                  connection): then a drain must look at the rings again
 *   -DMIXED        the reader's fd is blocking, and before some of its
 *                  read()s (any, nondeterministically) it waits in poll()
 *   -DPOLLER       the reader is an event-driven program: it calls read()
 *                  only when poll() says readable (a token byte queued, or
 *                  tund's end shut), and its fd is non-blocking (the wait
 *                  for a grant says EAGAIN instead of blocking); a ring with
 *                  bytes and an unreadable fd is then a hang
 *   -DTSO          the store buffer above; -DNO_RX_FENCE: without the fence
 *   -DMUT_*        deliberate bugs, each of which a check must catch
 *                  (the model's own test: see README.md)
 *   -DNO_LTL       leave out the LTL claims (safety runs: partial-order
 *                  reduction works only without the claims' remote references)
 */

#ifndef NRX
#define NRX 3          /* bytes the peer sends, then FIN */
#endif
#ifndef NTX
#define NTX 3          /* bytes the program writes */
#endif
#ifndef RXN
#define RXN 1          /* rx ring size */
#endif
#ifndef TXN
#define TXN 4          /* tx ring size */
#endif
#ifndef LOW
#if TXN >= 4
#define LOW (TXN / 4)  /* conn_update_writable(): free >= tx_size / 4 */
#else
#define LOW 1          /* (a real ring is >= 4096 bytes: tx_size / 4 >= 1) */
#endif
#endif
#ifndef WND
#define WND 1          /* bytes lwIP delivers that tund must hold outside the ring */
#endif
#ifndef INFL
#define INFL 2         /* lwIP's send buffer */
#endif
#ifndef DRAIN_CAP
#define DRAIN_CAP 2    /* recv() calls per conn_drain_t() (tund: 16) */
#endif
#ifndef PCAP
#define PCAP 2         /* program's end of the pair: units of filler until unwritable */
#endif
#ifndef FILLMAX
#define FILLMAX (2 * PCAP)   /* io_fill(): at most 16 sends of 16 KiB, a few pair-fulls */
#endif
#define CTLCAP 2       /* doorbell connection (the program waits in poll() when it is full) */
#define GRANT 2        /* ENOSHM_GRANT: token bytes per grant */

mtype = { WAKE };
chan ctl = [CTLCAP] of { mtype };  /* program -> tund: ENOIPC_KICK on the doorbell connection */

/* ---- shared memory (struct enoshm) ---- */
byte rx_prod, rx_cons;             /* rx ring: tund produces, the program consumes */
byte tx_prod, tx_cons;             /* tx ring: the program produces, tund releases */
bit  rx_tok;
bit  want_tx, want_rxspace;        /* wants: ENOSHM_WANT_TX, ENOSHM_WANT_RXSPACE */
#ifdef NO_CONNECT
bit  st_est = 1;                   /* published status: ESTABLISHED ... */
#else
bit  st_est;                       /* published status: ESTABLISHED (from CONNECTING) ... */
#endif
bit  st_eof;                       /* ... and ENOSHM_F_RX_EOF */

/* ---- the reader thread's store buffer (TSO) ---- */
byte rxc_buf;
bit  rxc_pending;

/* ---- the program's part of the header ---- */
byte tok_taken;                    /* bytes of the current grant a wait took (under rx_lock) */
short credit;                      /* p2t_decl - tund's t_drained: declared, not yet drained
                                      (the two counters themselves only grow) */

/* ---- kernel state of the pair ---- */
byte ntok;                         /* token bytes queued tund -> program (property b: <= 2 GRANT) */
byte p2t;                          /* bytes queued program -> tund */
bit  p2t_edge;                     /* an EPOLLIN edge waits in tund's epoll */
bit  t_wr_shut;                    /* tund did shutdown(tfd, SHUT_WR): the program reads EOF */

/* ---- ghosts ---- */
bit  reader_done, writer_done;

#ifdef TSO
#define STORE_RX_CONS(v)  rxc_buf = v; rxc_pending = 1
#define FENCE             (rxc_pending == 0)   /* locked insn / mfence: wait until drained */
#else
#define STORE_RX_CONS(v)  rx_cons = v
#define FENCE             skip
#endif

#define MIN(a, b)         ((a) < (b) -> (a) : (b))

/* conn_kick() and friends as a list of functions, base-4 digits, lowest first */
#define OP_RX   1          /* conn_rx_pump() */
#define OP_TX   2          /* conn_tx_pump() */
#define OP_WR   3          /* conn_update_writable() */
#define KICK    (OP_RX + 4 * OP_TX + 16 * OP_WR)              /* conn_kick() */
#define SENT    (OP_WR + 4 * OP_TX)                           /* on_sent() */
#define ESTAB   (OP_WR + 4 * OP_TX + 16 * OP_RX)              /* conn_established() */

/* ======================================================================== */
/* tund                                                                      */
/* ======================================================================== */

/* tund is written as a state machine whose every transition is exactly one
 * access to shared state (memory, the pair, the doorbell connection) together
 * with the purely local work that follows it up to the next such access
 * (advance()).  Local work commutes with everything the program does, so
 * this loses no interleaving (Lipton reduction) and keeps the state space
 * small.  `tpc` is the program counter; the comment on each transition
 * names the code. */
mtype = {
  T_IDLE, T_DISPATCH,
  T_RX_ENTRY, T_RX_READ, T_RX_STORE, T_RX_WANT, T_NOTIFY, T_CAS, T_SEND,
  T_EOF_CHECK, T_EOF_PUB, T_EOF_SHUT,
  T_TX_ENTRY, T_TX_READ, T_TX_WANT,
  T_WR_ENTRY, T_WR_CHECK, T_WR_DRAIN, T_WR_BLOCK, T_WR_BYPASS
};

/* local steps until the next shared access (or the end of the event) */
inline advance()
{
  do
  :: tpc == T_DISPATCH ->                       /* the next function of the event */
     if
     :: ops == 0 -> tpc = T_IDLE; break
     :: ops % 4 == OP_RX -> ops = ops / 4; tpc = T_RX_ENTRY
     :: ops % 4 == OP_TX -> ops = ops / 4; tpc = T_TX_ENTRY
     :: ops % 4 == OP_WR -> ops = ops / 4; tpc = T_WR_ENTRY
     fi
  :: tpc == T_RX_ENTRY ->                       /* conn_rx_pump() */
     if
     :: established && rxq > 0 -> round = 0; tpc = T_RX_READ; break
     :: else -> tpc = T_EOF_CHECK
     fi
  :: tpc == T_NOTIFY ->                         /* conn_rx_notify() */
     if
     :: t_wr_shut -> tpc = ret
     :: else -> tpc = T_CAS; break
     fi
  :: tpc == T_EOF_CHECK ->                      /* conn_rx_pump(): EOF once all is in */
     if
     :: established && rxq == 0 && fin_in && !eof_published -> tpc = T_EOF_PUB; break
     :: else -> tpc = T_DISPATCH
     fi
  :: tpc == T_TX_ENTRY ->                       /* conn_tx_pump() */
     if
     :: established -> round = 0; tpc = T_TX_READ; break
     :: else -> tpc = T_DISPATCH
     fi
  :: tpc == T_WR_ENTRY ->                       /* conn_update_writable() */
     if
     :: t_pending && established -> tpc = T_WR_CHECK; break
     :: else -> tpc = T_DISPATCH
     fi
  :: else -> break
  od
}

active proctype tund()
{
  /* tund's private state (struct conn) */
  byte rxq;                        /* received bytes not yet in the ring (c->rxq) */
  byte net_left = NRX;             /* bytes the peer has yet to send */
  byte tx_read;                    /* c->tx_read (tx_cons doubles as c->tx_cons) */
  bit  fin_in, eof_published, t_pending, pending;
#ifdef NO_CONNECT
  bit  established = 1;
#else
  bit  established;
#endif
  /* the state machine */
  mtype tpc = T_IDLE, ret;         /* ret: where conn_rx_notify() returns to */
  byte ops, n, round;
  bit copied, drained;
  byte nreads;                     /* recv() calls in this conn_drain_t() */

  do
  /* ---- events (tund/loop.c: one at a time; the pending list of
   * conn_run_pending() runs after any number of other events) ---- */

  /* conn_t_event(): EPOLLIN, reported only if our end is still readable */
  :: atomic { tpc == T_IDLE && p2t_edge && p2t > 0 ->
       p2t_edge = 0; t_pending = 1; ops = KICK; tpc = T_DISPATCH; advance() }
  :: atomic { tpc == T_IDLE && p2t_edge && p2t == 0 -> p2t_edge = 0 }   /* re-poll: no event */

  /* tund/client.c ENOIPC_KICK: KICK_WAKE -> conn_kick() */
  :: atomic { tpc == T_IDLE && ctl?[WAKE] -> ctl?WAKE; ops = KICK; tpc = T_DISPATCH; advance() }

  /* on_recv(): a data byte within the window */
  :: atomic { tpc == T_IDLE && established && net_left > 0 && rxq < WND ->
       net_left--; rxq++; ops = OP_RX; tpc = T_DISPATCH; advance() }

  /* on_recv(p == NULL): the peer's FIN, after its data, within the window */
#ifndef NOFIN
  :: atomic { tpc == T_IDLE && established && net_left == 0 && !fin_in && rxq < WND ->
       fin_in = 1; ops = OP_RX; tpc = T_DISPATCH; advance() }
#endif

  /* on_sent(): one byte acknowledged; tx_cons published (release store) */
  :: atomic { tpc == T_IDLE && tx_read > tx_cons -> tx_cons++;
#ifdef MUT_SENT_NO_WRITABLE
       ops = OP_TX;
#else
       ops = SENT;
#endif
       tpc = T_DISPATCH; advance() }

  /* on_connected() -> conn_established(): conn_publish(ESTABLISHED), then the rest */
  :: atomic { tpc == T_IDLE && !established ->
       established = 1; st_est = 1; ops = ESTAB; tpc = T_DISPATCH; advance() }

  /* conn_run_pending(): conn_kick() once more */
  :: atomic { tpc == T_IDLE && pending -> pending = 0; ops = KICK; tpc = T_DISPATCH; advance() }

  /* the program is done and nothing is left to do: the model ends (so that
   * any other state where nobody can move is an error: a lost wake-up) */
  :: atomic { tpc == T_IDLE && reader_done && writer_done && tx_cons == NTX && !p2t_edge &&
              len(ctl) == 0 && !pending -> break }
#ifndef NO_LTL
  /* liveness runs: a state where nobody can move stutters here, so that it
   * is an infinite run the claims judge (Spin's weak fairness does not
   * accept a deadlock as a fair cycle); safety runs report it as an
   * invalid end state instead */
  :: timeout -> skip
#endif

  /* ---- conn_rx_pump_plain() ---- */
  /* enoshm_rx_space_checked() reads rx_cons; the copy into the ring is tund's own */
  :: atomic { tpc == T_RX_READ ->
       assert(rx_prod >= rx_cons && rx_prod - rx_cons <= RXN);
       n = MIN(rxq, RXN - (rx_prod - rx_cons));
       rxq = rxq - n;
       if :: n > 0 -> copied = 1 :: else -> skip fi;
       if :: copied -> tpc = T_RX_STORE :: else -> tpc = T_RX_WANT fi }
  /* atomic_store_explicit(&rx_prod, ..., release) when copied_total */
  :: atomic { tpc == T_RX_STORE -> rx_prod = rx_prod + n; n = 0;
       if
       :: rxq == 0 -> ret = T_EOF_CHECK; tpc = T_NOTIFY           /* break; then conn_rx_notify() */
       :: else -> tpc = T_RX_WANT
       fi;
       advance() }
  /* ring full: atomic_fetch_or(WANT_RXSPACE), then look once more */
  :: atomic { tpc == T_RX_WANT -> want_rxspace = 1; round++;
       if
       :: round < 2 -> tpc = T_RX_READ
       :: else ->
          if
          :: copied -> ret = T_EOF_CHECK; tpc = T_NOTIFY
          :: else -> tpc = T_EOF_CHECK
          fi;
          round = 0
       fi;
       advance() }
  /* conn_rx_notify(): CAS(rx_tok, 0 -> 1) */
  :: atomic { tpc == T_CAS -> copied = 0;
#ifdef MUT_NOTIFY_NO_CAS
       rx_tok = 1; tpc = T_SEND
#else
       if :: rx_tok == 0 -> rx_tok = 1; tpc = T_SEND :: else -> tpc = ret fi;
       advance()
#endif
     }
  /* ... and, having won, a grant (send(MSG_DONTWAIT) of GRANT bytes); what
   * may still be queued is the rest of the grant before (b) */
  :: atomic { tpc == T_SEND -> ntok = ntok + GRANT; assert(ntok <= 2 * GRANT); tpc = ret; advance() }   /* (b) */
  /* conn_publish_eof(): conn_publish(ENOSHM_F_RX_EOF), conn_rx_notify() */
  :: atomic { tpc == T_EOF_PUB -> eof_published = 1; st_eof = 1; ret = T_EOF_SHUT; tpc = T_NOTIFY; advance() }
  /* ... shutdown(tfd, SHUT_WR) */
  :: atomic { tpc == T_EOF_SHUT -> t_wr_shut = 1; tpc = T_DISPATCH; advance() }

  /* ---- conn_tx_pump_plain() ---- */
  /* enoshm_tx_avail_checked() reads tx_prod; tcp_write() what lwIP takes */
  :: atomic { tpc == T_TX_READ ->
       assert(tx_prod >= tx_read && tx_prod - tx_cons <= TXN);
       n = MIN(tx_prod - tx_read, INFL - (tx_read - tx_cons));
       if
       :: tx_prod - tx_read - n > 0 -> round = 0; tpc = T_DISPATCH     /* lwIP full: on_sent() resumes */
       :: else -> tpc = T_TX_WANT
       fi;
       tx_read = tx_read + n; n = 0;
       advance() }
  /* ring empty: atomic_fetch_or(WANT_TX), then look once more */
  :: atomic { tpc == T_TX_WANT -> want_tx = 1; round++;
#ifdef MUT_TX_ONE_ROUND
       round = 2;
#endif
       if :: round < 2 -> tpc = T_TX_READ :: else -> round = 0; tpc = T_DISPATCH fi;
       advance() }

  /* ---- conn_update_writable() -> conn_drain_t() ---- */
  /* conn_tx_free() reads tx_prod: drain only when the ring has room */
  :: atomic { tpc == T_WR_CHECK ->
#ifdef MUT_BLOCKING_DRAIN
       if :: TXN - (tx_prod - tx_cons) >= LOW -> tpc = T_WR_BLOCK :: else -> tpc = T_DISPATCH fi;
#else
       if :: TXN - (tx_prod - tx_cons) >= LOW -> tpc = T_WR_DRAIN :: else -> tpc = T_DISPATCH fi;
#endif
       advance() }
  /* recv(MSG_DONTWAIT) until EAGAIN, at most DRAIN_CAP times (16 in
   * tund): then conn_mark_pending() if it read anything; at the cap our end
   * may still hold bytes, so t_pending stays set and the pending turn comes
   * back here */
#ifdef MUT_UNBOUNDED_DRAIN
  :: atomic { tpc == T_WR_DRAIN && p2t > 0 -> credit = credit - p2t; p2t = 0; drained = 1 }
#else
  :: atomic { tpc == T_WR_DRAIN && nreads < DRAIN_CAP && p2t > 0 -> credit = credit - p2t; p2t = 0;
       drained = 1; nreads++ }
  :: atomic { tpc == T_WR_DRAIN && nreads == DRAIN_CAP ->
       pending = 1; drained = 0; nreads = 0; tpc = T_DISPATCH; advance() }
#endif
  :: atomic { tpc == T_WR_DRAIN && nreads < DRAIN_CAP && p2t == 0 ->
       t_pending = 0; nreads = 0;
       if :: drained -> tpc = T_WR_BYPASS :: else -> tpc = T_DISPATCH; advance() fi }
  /* conn_bypass_check(): load p2t_decl after the recv() calls; the shim
   * wrote nothing around itself here, so it must never find more drained
   * than declared (no false alarm: that would reset a good connection) */
  :: atomic { tpc == T_WR_BYPASS ->
       assert(credit >= 0);           /* t_drained <= p2t_decl */
#ifndef MUT_NO_PENDING
       pending = 1;
#endif
       drained = 0; tpc = T_DISPATCH; advance() }
#ifdef MUT_BLOCKING_DRAIN
  /* mutant: a blocking recv(MSG_WAITALL) of a whole buffer */
  :: atomic { tpc == T_WR_BLOCK && p2t == PCAP -> p2t = 0; t_pending = 0; pending = 1;
       tpc = T_DISPATCH; advance() }
#endif
  od
}

/* ======================================================================== */
/* the program                                                               */
/* ======================================================================== */

/* Both threads are state machines in the same style as tund: one shared
 * access per transition.  Under -DTSO the reader's locked instructions
 * (atomic RMW, seq_cst store) and its system calls (the kernel takes locks)
 * first drain its store buffer (FLUSHED); its plain loads do not. */
#ifdef TSO
#define FLUSHED   && rxc_pending == 0
#else
#define FLUSHED
#endif
#ifndef NO_RX_FENCE
#define RX_FENCE_FLUSHED FLUSHED   /* io_recv(): atomic_thread_fence(seq_cst) after the store */
#else
#define RX_FENCE_FLUSHED           /* the code before commit 145e38e: no fence */
#endif

mtype = {
  R_POLL_IN, R_CHOOSE, R_CALL, R_STORE, R_WANTS, R_BELL, R_STATUS, R_RECHECK,
  R_SETTLE, R_SPROD, R_CLEAR, R_REPROD, R_REEOF, R_CAS, R_DRAIN, R_DRAIN_POLL, R_POSTSETTLE,
  R_WAIT, R_WAIT_EOF, R_WAIT_PROD, R_DONE,
  W_FILL, W_FILL_W, W_FILL_D, W_CONN, W_CONN_WAIT, W_CONN_WAIT_W, W_CONN_WAIT_D, W_ROOM, W_STORE,
  W_FETCH, W_BELL, W_PIECE, W_PIECE_W, W_PIECE_D, W_DONE
};

/* rx_settle() kept the grant: after a copy the next call, before a wait a new look */
#define R_KEPT (ret == R_WAIT -> R_CALL : ret)
/* after the copy: rx_settle() when the ring was emptied, else the next call
 * (-DNOFIN: the peer sends no FIN; the reader stops once it has all, after
 * the settle) */
#ifdef NOFIN
#define R_NEXT_COPY   (mycons == NRX -> R_DONE : R_NEXT)
#else
#define R_NEXT_COPY   R_NEXT
#endif
#define R_AFTER_COPY  if :: mycons == prod -> ret = R_NEXT_COPY; rpc = R_SETTLE :: else -> prod = 0; rpc = R_NEXT fi
#if defined(POLLER)
#define R_NEXT R_POLL_IN           /* poll(POLLIN) before every read() */
#elif defined(MIXED)
#define R_NEXT R_CHOOSE            /* poll(POLLIN) before some read()s */
#else
#define R_NEXT R_CALL
#endif

/* The reader thread: recv() calls until EOF; each io_recv() takes all there
 * is or one byte (the caller's buffer size).  -DPOLLER: an event-driven
 * reader with a non-blocking fd. */
active proctype reader()
{
  mtype rpc = R_NEXT, ret;         /* ret: where rx_settle() returns to */
  byte prod, mycons, n, k;
  bit eof;

  do
#if defined(POLLER) || defined(MIXED)
  /* poll(POLLIN): our end readable (token bytes, or tund shut its end) */
  :: atomic { rpc == R_POLL_IN && (ntok > 0 || t_wr_shut) FLUSHED -> rpc = R_CALL }
#endif
#ifdef MIXED
  :: atomic { rpc == R_CHOOSE -> if :: rpc = R_CALL :: rpc = R_POLL_IN fi }
#endif
  /* ---- io_recv() ---- */
  /* prod = rx_prod (acquire); cons = ours */
  :: atomic { rpc == R_CALL ->
       prod = rx_prod;
       if
       :: prod != mycons ->
          if :: n = prod - mycons :: prod - mycons > 1 -> n = 1 fi;
          rpc = R_STORE
       :: else -> rpc = R_STATUS
       fi }
  /* copy out, then atomic_store_explicit(&rx_cons, cons + n, release),
   * atomic_thread_fence(seq_cst) */
  :: atomic { rpc == R_STORE ->
       mycons = mycons + n; n = 0; STORE_RX_CONS(mycons); rpc = R_WANTS }
  /* if (relaxed load of wants & WANT_RXSPACE && atomic_fetch_and(...) & WANT_RXSPACE)
   *   ring_doorbell(); nobody but this thread clears the bit, so a set bit
   * seen by the load is still set for the fetch_and (which drains the store
   * buffer); the fence before the load drains it in any case */
  :: atomic { rpc == R_WANTS && want_rxspace == 1 FLUSHED -> want_rxspace = 0; rpc = R_BELL }
  :: atomic { rpc == R_WANTS && want_rxspace == 0 RX_FENCE_FLUSHED -> R_AFTER_COPY }
  /* ring_doorbell() -> bell_ring(): one ENOIPC_KICK written to the doorbell
   * connection; when it is full (EAGAIN), poll(POLLOUT) until tund reads */
  :: atomic { rpc == R_BELL && len(ctl) < CTLCAP FLUSHED ->
#ifndef MUT_DOORBELL_DROP
       ctl!WAKE;
#endif
       R_AFTER_COPY }
#ifdef PAIR_DOORBELL
  /* ... or, without a doorbell connection, a declared byte on our end */
  :: atomic { rpc == R_BELL && p2t < PCAP FLUSHED -> credit++; p2t++; p2t_edge = 1; R_AFTER_COPY }
#endif
  /* nothing buffered: enoshm_status_read() ... */
  :: atomic { rpc == R_STATUS -> eof = st_eof; rpc = R_RECHECK }
  /* ... then look at rx_prod once more */
  :: atomic { rpc == R_RECHECK ->
       if
       :: rx_prod != prod -> eof = 0; prod = 0; rpc = R_CALL
       :: else ->
          if
          :: eof -> eof = 0; rpc = R_DONE                   /* read() returns 0 */
          :: else -> ret = R_WAIT; rpc = R_SETTLE
          fi
       fi }

  /* ---- rx_settle(): give the grant back ---- */
  :: atomic { rpc == R_SETTLE ->
       if
       :: rx_tok == 1 -> rpc = R_SPROD
       :: else -> prod = 0; if :: ret == R_WAIT -> rpc = R_POSTSETTLE :: else -> rpc = ret fi
       fi }
  /* bytes came since the caller looked: keep the grant (rx_settle()
   * returns 1: io_recv() looks again instead of waiting) */
  :: atomic { rpc == R_SPROD ->
       if :: rx_prod != mycons -> prod = 0; rpc = R_KEPT :: else -> rpc = R_CLEAR fi }
  /* atomic_store(&rx_tok, 0) (seq_cst) + seq_cst fence */
  :: atomic { rpc == R_CLEAR FLUSHED -> rx_tok = 0; rpc = R_REPROD }
  :: atomic { rpc == R_REPROD -> prod = rx_prod; rpc = R_REEOF }
  /* enoshm_status_read(); bytes or EOF slipped in: take the flag back */
  :: atomic { rpc == R_REEOF -> eof = st_eof;
#ifdef MUT_NO_RECHECK
       eof = 0; prod = 0; rpc = R_DRAIN
#else
       if
       :: prod != mycons || eof -> rpc = R_CAS
       :: else -> prod = 0; rpc = R_DRAIN
       fi;
       eof = 0
#endif
     }
  /* CAS(rx_tok, 0 -> 1): won, the rest of our grant stands for it; lost,
   * tund sends a new grant after the rest of ours */
  :: atomic { rpc == R_CAS FLUSHED ->
       if :: rx_tok == 0 -> rx_tok = 1; prod = 0; rpc = R_KEPT :: else -> prod = 0; rpc = R_DRAIN fi }
  /* tok_drain(): read the GRANT - tok_taken bytes of our grant (they may be
   * on their way: tund won the flag and sends next); read() returns what is
   * there, EOF (0) when tund shut its end */
  :: atomic { rpc == R_DRAIN FLUSHED ->
       assert(tok_taken < GRANT);
       k = GRANT - tok_taken; tok_taken = 0;
       rpc = R_DRAIN_POLL }
  :: atomic { rpc == R_DRAIN_POLL && k > 0 && ntok > 0 ->
       if :: ntok >= k -> ntok = ntok - k; k = 0 :: else -> k = k - ntok; ntok = 0 fi }
  :: atomic { rpc == R_DRAIN_POLL && (k == 0 || (ntok == 0 && t_wr_shut)) -> k = 0;
       if :: ret == R_WAIT -> rpc = R_POSTSETTLE :: else -> rpc = ret fi }
  /* io_recv(): "if (rx_settle() || rx_prod != prod) continue;" before the wait */
  :: atomic { rpc == R_POSTSETTLE ->
       if :: rx_prod != mycons -> rpc = R_CALL :: else -> rpc = R_WAIT fi }

  /* ---- tok_wait(): read() of one byte of a grant ---- */
  :: atomic { rpc == R_WAIT && ntok > 0 FLUSHED ->
       assert(tok_taken == 0);        /* a wait comes after the grant before it was given back */
#ifdef MUT_WAIT_TAKES_GRANT
       if :: ntok >= GRANT -> ntok = ntok - GRANT; tok_taken = GRANT - 1 :: else -> ntok--; tok_taken = 1 fi;
#else
       ntok--; tok_taken = 1;
#endif
       prod = 0; rpc = R_CALL }
  :: atomic { rpc == R_WAIT && ntok == 0 && t_wr_shut FLUSHED -> rpc = R_WAIT_EOF }
#ifdef POLLER
  /* non-blocking: EAGAIN, back to poll() */
  :: atomic { rpc == R_WAIT && ntok == 0 && !t_wr_shut FLUSHED -> prod = 0; rpc = R_POLL_IN }
#endif
  /* our end says EOF: tund published EOF (or died, which it does not here) */
  :: atomic { rpc == R_WAIT_EOF -> eof = st_eof; rpc = R_WAIT_PROD }
  :: atomic { rpc == R_WAIT_PROD -> assert(rx_prod != prod || eof); eof = 0; prod = 0; rpc = R_CALL }

  :: atomic { rpc == R_DONE -> assert(mycons == NRX); reader_done = 1; break }
  od
}

/* choose the next write() call: one byte, or all that is left */
inline next_call()
{
  put = 0;
  if
  :: myprod == NTX -> want = 0; wpc = W_DONE
  :: else ->
     if :: want = NTX - myprod :: NTX - myprod > 1 -> want = 1 fi;
     wpc = W_ROOM
  fi
}

/* pair_write(): p2t_decl is raised (atomic RMW) before the write() ... */
#ifdef MUT_DECL_AFTER
#define DECL_BEFORE  skip
#define DECL_AFTER   credit++        /* mutant: declared only once written */
#define DECL_UNDO    skip
#else
#define DECL_BEFORE  credit++
#define DECL_AFTER   skip
#define DECL_UNDO    credit--        /* ... and lowered after a short one */
#endif

/* The writer thread: connect() (the fd is unwritable until tund says
 * connected), then write() calls of 1 byte or of all the rest, until NTX. */
active proctype writer()
{
#ifdef NO_CONNECT
  mtype wpc = W_CONN;              /* connected already: the first write() */
#else
  mtype wpc = W_FILL;
#endif
  byte myprod, want, put, n, fills;

  do
  /* ---- sock_connect(): io_fill() (non-blocking pieces), then wait until established ---- */
  :: atomic { wpc == W_FILL ->
       if
       :: fills < FILLMAX -> DECL_BEFORE; wpc = W_FILL_W
       :: else -> fills = 0; wpc = W_CONN
       fi }
  /* send(MSG_DONTWAIT): in, or EAGAIN (the declaration taken back) */
  :: atomic { wpc == W_FILL_W ->
       if
       :: p2t < PCAP -> p2t++; p2t_edge = 1; fills++; wpc = W_FILL_D
       :: else -> DECL_UNDO; fills = 0; wpc = W_CONN
       fi }
  :: atomic { wpc == W_FILL_D -> DECL_AFTER; wpc = W_FILL }
  :: atomic { wpc == W_CONN ->                                /* connect_result() */
       if :: st_est -> next_call() :: else -> wpc = W_CONN_WAIT fi }
  /* io_wait_writable(): one blocking byte */
  :: atomic { wpc == W_CONN_WAIT -> DECL_BEFORE; wpc = W_CONN_WAIT_W }
  :: atomic { wpc == W_CONN_WAIT_W && p2t < PCAP -> p2t++; p2t_edge = 1; wpc = W_CONN_WAIT_D }
  :: atomic { wpc == W_CONN_WAIT_D -> DECL_AFTER; wpc = W_CONN }

  /* ---- io_send() ---- */
  /* room: tx_cons (acquire) */
  :: atomic { wpc == W_ROOM ->
       if
       :: TXN - (myprod - tx_cons) > 0 ->
          n = MIN(want - put, TXN - (myprod - tx_cons));
          myprod = myprod + n; put = put + n; n = 0;
          wpc = W_STORE
       :: else -> wpc = W_PIECE                             /* ring full */
       fi }
  :: atomic { wpc == W_STORE -> tx_prod = myprod; wpc = W_FETCH }   /* release store */
  /* atomic_fetch_and(&wants, ~WANT_TX) & WANT_TX: ring_doorbell() */
  :: atomic { wpc == W_FETCH ->
       if
       :: want_tx -> want_tx = 0; wpc = W_BELL
       :: else -> if :: put == want -> next_call() :: else -> wpc = W_ROOM fi
       fi }
  /* bell_ring(): the doorbell connection (poll(POLLOUT) while it is full) */
  :: atomic { wpc == W_BELL && len(ctl) < CTLCAP ->
#ifndef MUT_DOORBELL_DROP
       ctl!WAKE;
#endif
       if :: put == want -> next_call() :: else -> wpc = W_ROOM fi }
#ifdef PAIR_DOORBELL
  :: atomic { wpc == W_BELL && p2t < PCAP -> credit++; p2t++; p2t_edge = 1;
       if :: put == want -> next_call() :: else -> wpc = W_ROOM fi }
#endif
  /* ring full: tx_fill_step(), one piece of filler: it goes in at once while
   * our end has room, else the blocking write() waits for tund's drain and
   * then goes in; either way the ring is looked at again */
  :: atomic { wpc == W_PIECE -> DECL_BEFORE; wpc = W_PIECE_W }
  :: atomic { wpc == W_PIECE_W && p2t < PCAP -> p2t++; p2t_edge = 1; wpc = W_PIECE_D }
  :: atomic { wpc == W_PIECE_D -> DECL_AFTER; wpc = W_ROOM }

  :: atomic { wpc == W_DONE -> writer_done = 1; break }
  od
}

#ifdef TSO
/* the reader's store buffer drains whenever the CPU likes */
active proctype store_buffer()
{
end_sb:
  do
  :: atomic { rxc_pending -> rx_cons = rxc_buf; rxc_pending = 0 }
  od
}
#endif

/* ======================================================================== */
/* properties                                                                */
/* ======================================================================== */

#ifndef NO_LTL
/* Fairness beyond Spin's weak fairness: tund's drain loop ends.  conn_drain_t()
 * stops after DRAIN_CAP reads (claim drain_ends); before that cap a program
 * writing to its end between every two of tund's recv() calls kept tund in
 * the loop for ever (mutant MUT_UNBOUNDED_DRAIN).  The protocol claims keep
 * the assumption so that the mutant's other claims stay meaningful. */
#define DRAIN_ENDS ([]<> (tund:tpc != T_WR_DRAIN))

/* everything is delivered both ways and all threads finish */
ltl done { DRAIN_ENDS -> <> (reader_done && writer_done && tx_cons == NTX) }

/* (a) rx: a non-empty ring eventually makes the fd readable or is read */
ltl rx_ready { DRAIN_ENDS -> [] ((rx_prod != rx_cons) -> <> ((rx_prod == rx_cons) || ntok > 0 || t_wr_shut)) }

/* (a') rx: bytes tund holds because the ring was full eventually go in */
ltl rx_space { DRAIN_ENDS -> [] ((tund:rxq > 0) -> <> (tund:rxq == 0 || rx_prod != rx_cons)) }

/* (b) never more than the rest of one grant and a new one queued (also
 * asserted where tund sends) */
ltl one_token { [] (ntok <= 2 * GRANT) }

/* (c) tx: room in the ring (established) eventually makes the fd writable */
ltl tx_writable { DRAIN_ENDS -> [] ((st_est && TXN - (tx_prod - tx_cons) >= LOW) ->
                                   <> (p2t < PCAP || TXN - (tx_prod - tx_cons) < LOW)) }

/* (c') tx: bytes the program published are eventually taken by tund */
ltl tx_taken { DRAIN_ENDS -> [] ((tx_prod != tund:tx_read) -> <> (tx_prod == tund:tx_read)) }

/* (d) tund never blocks: every event's steps finish */
ltl tund_nonblocking { DRAIN_ENDS -> [] ((tund:tpc != T_IDLE) -> <> (tund:tpc == T_IDLE)) }

/* the drain loop ends (it failed before the cap: mutant MUT_UNBOUNDED_DRAIN) */
ltl drain_ends { [] ((tund:tpc == T_WR_DRAIN) -> <> (tund:tpc != T_WR_DRAIN)) }
#endif
