/*
 * readiness.pml — the readiness hand-shake between tund and a program's
 * socket (include/enoshim/shm.h, "Readiness hand-shake"), modelled statement
 * by statement after the code:
 *
 *   program, reader thread   shim/io.c   io_recv(), rx_settle(), ring_doorbell()
 *   program, writer thread   shim/io.c   io_send(); shim/sock.c io_fill(),
 *                                        io_wait_writable(), sock_connect()
 *   tund (one thread)        tund/progend.c conn_t_event(), conn_kick(),
 *                            conn_kick_rearm(), conn_rx_pump_plain(),
 *                            conn_rx_notify(), conn_publish_eof(),
 *                            conn_tx_pump_plain(), conn_update_writable(),
 *                            conn_drain_t(), on_recv(), on_sent(),
 *                            conn_established(), conn_run_pending();
 *                            tund/loop.c loop_run() (one turn: events, then
 *                            the pending list); tund/client.c ENOIPC_KICK
 *
 * The socketpair is two bounded byte queues kept as counters (ntok: token
 * bytes tund -> program; p2t: filler / doorbell / wait bytes program -> tund,
 * PCAP units before the program's end stops being writable; which byte is
 * which does not matter to anyone); the control socket is a FIFO channel.
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
#define FILLMAX (2 * PCAP)   /* io_fill(): at most 64 sends of 4 KiB, a few pair-fulls */
#endif
#define CTLCAP 2       /* control socket (the program blocks when it is full) */

mtype = { WAKE, REARM };
chan ctl = [CTLCAP] of { mtype };  /* program -> tund: ENOIPC_KICK */

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

/* ---- kernel state of the pair ---- */
byte ntok;                         /* token bytes queued tund -> program (property b: <= 1) */
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
 * access to shared state (memory, the pair, the control socket) together
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
  T_WR_ENTRY, T_WR_CHECK, T_WR_DRAIN, T_WR_BLOCK
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

  /* KICK_REARM -> conn_kick_rearm(): the token the program's flag stands for, then conn_kick() */
  :: atomic { tpc == T_IDLE && ctl?[REARM] -> ctl?REARM;
       if :: !t_wr_shut -> ntok++; assert(ntok <= 1) :: else -> skip fi;   /* (b) */
       ops = KICK; tpc = T_DISPATCH; advance() }

  /* on_recv(): a data byte within the window */
  :: atomic { tpc == T_IDLE && established && net_left > 0 && rxq < WND ->
       net_left--; rxq++; ops = OP_RX; tpc = T_DISPATCH; advance() }

  /* on_recv(p == NULL): the peer's FIN, after its data, within the window */
  :: atomic { tpc == T_IDLE && established && net_left == 0 && !fin_in && rxq < WND ->
       fin_in = 1; ops = OP_RX; tpc = T_DISPATCH; advance() }

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
  /* ... and, having won, one token byte (send(MSG_DONTWAIT)) */
  :: atomic { tpc == T_SEND -> ntok++; assert(ntok <= 1); tpc = ret; advance() }   /* (b) */
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
  :: atomic { tpc == T_WR_DRAIN && p2t > 0 -> p2t = 0; drained = 1 }
#else
  :: atomic { tpc == T_WR_DRAIN && nreads < DRAIN_CAP && p2t > 0 -> p2t = 0; drained = 1; nreads++ }
  :: atomic { tpc == T_WR_DRAIN && nreads == DRAIN_CAP ->
       pending = 1; drained = 0; nreads = 0; tpc = T_DISPATCH; advance() }
#endif
  :: atomic { tpc == T_WR_DRAIN && nreads < DRAIN_CAP && p2t == 0 ->
       t_pending = 0;
#ifndef MUT_NO_PENDING
       if :: drained -> pending = 1 :: else -> skip fi;
#endif
       drained = 0; nreads = 0; tpc = T_DISPATCH; advance() }
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
  R_CALL, R_STORE, R_WANTS, R_BELL, R_KICK, R_STATUS, R_RECHECK,
  R_SETTLE, R_TOKEN, R_POLL, R_CLEAR, R_REPROD, R_REEOF, R_CAS, R_REARM,
  R_WAIT, R_WAIT_EOF, R_WAIT_PROD, R_DONE,
  W_FILL, W_CONN, W_CONN_WAIT, W_ROOM, W_STORE, W_FETCH, W_BELL, W_KICK,
  W_FULL_FILL, W_FULL_RECHECK, W_FULL_WAIT, W_DONE
};

/* The reader thread: blocking recv() calls until EOF; each io_recv() takes
 * all there is or one byte (the caller's buffer size). */
active proctype reader()
{
  mtype rpc = R_CALL, ret;         /* ret: where rx_settle() returns to */
  byte prod, mycons, n;
  bit eof;

  do
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
  :: atomic { rpc == R_WANTS && want_rxspace == 0 RX_FENCE_FLUSHED ->
       if
       :: mycons == prod -> ret = R_CALL; rpc = R_SETTLE     /* cons + n == prod: rx_settle() */
       :: else -> prod = 0; rpc = R_CALL                      /* return; next call */
       fi }
  /* ring_doorbell(): ENOIPC_KICK on the control connection when
   * ctl_try_doorbell() gets it, else one byte on our end (MSG_DONTWAIT) ... */
  :: atomic { rpc == R_BELL FLUSHED ->
       if
       :: len(ctl) < CTLCAP -> rpc = R_KICK   /* MSG_DONTWAIT: only with room */
       :: p2t < PCAP -> p2t++; p2t_edge = 1;
          if :: mycons == prod -> ret = R_CALL; rpc = R_SETTLE :: else -> prod = 0; rpc = R_CALL fi
       :: p2t >= PCAP -> rpc = R_KICK
       fi }
  /* ... or, our end being full of filler, ctl_kick(KICK_WAKE) (blocking) */
  :: atomic { rpc == R_KICK && len(ctl) < CTLCAP FLUSHED ->
#ifndef MUT_DOORBELL_DROP
       ctl!WAKE;
#endif
       if :: mycons == prod -> ret = R_CALL; rpc = R_SETTLE :: else -> prod = 0; rpc = R_CALL fi }
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

  /* ---- rx_settle() ---- */
  :: atomic { rpc == R_SETTLE ->
       if :: rx_tok == 1 -> rpc = R_TOKEN :: else -> prod = 0; rpc = ret fi }
  /* recv(fd, &b, 1, MSG_DONTWAIT): the token, EOF, or EAGAIN */
  :: atomic { rpc == R_TOKEN FLUSHED ->
       if
       :: ntok > 0 -> ntok--; rpc = R_CLEAR                  /* exactly one byte */
       :: ntok == 0 && t_wr_shut -> prod = 0; rpc = ret      /* recv() == 0: return */
       :: ntok == 0 && !t_wr_shut -> rpc = R_POLL            /* EAGAIN */
       fi }
  /* poll(POLLIN, 1000): "tund set the flag and is about to write" */
  :: atomic { rpc == R_POLL && (ntok > 0 || t_wr_shut) -> rpc = R_TOKEN }
  :: atomic { rpc == R_POLL && rx_tok != 1 -> prod = 0; rpc = ret }   /* timed out, flag gone */
  /* atomic_store(&rx_tok, 0) (seq_cst) + seq_cst fence */
  :: atomic { rpc == R_CLEAR FLUSHED -> rx_tok = 0; rpc = R_REPROD }
  :: atomic { rpc == R_REPROD -> prod = rx_prod; rpc = R_REEOF }
  /* enoshm_status_read(); bytes or EOF slipped in: CAS(rx_tok, 0 -> 1) */
  :: atomic { rpc == R_REEOF -> eof = st_eof;
#ifdef MUT_NO_RECHECK
       eof = 0; prod = 0; rpc = ret
#else
       if
       :: prod != mycons || eof -> rpc = R_CAS
       :: else -> prod = 0; rpc = ret
       fi;
       eof = 0
#endif
     }
  :: atomic { rpc == R_CAS FLUSHED ->
       if :: rx_tok == 0 -> rx_tok = 1; rpc = R_REARM :: else -> prod = 0; rpc = ret fi }
  /* ctl_kick(rearm) */
  :: atomic { rpc == R_REARM && len(ctl) < CTLCAP FLUSHED -> ctl!REARM; prod = 0; rpc = ret }

  /* recv(fd, &b, 1, MSG_PEEK): blocks until a token or EOF */
  :: atomic { rpc == R_WAIT && ntok > 0 FLUSHED -> prod = 0; rpc = R_CALL }
  :: atomic { rpc == R_WAIT && ntok == 0 && t_wr_shut FLUSHED -> rpc = R_WAIT_EOF }
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
  /* ---- sock_connect(): io_fill(), then wait for writability until established ---- */
  :: atomic { wpc == W_FILL ->
       if
       :: p2t < PCAP && fills < FILLMAX -> p2t++; p2t_edge = 1; fills++
       :: else -> fills = 0; wpc = W_CONN                   /* EAGAIN (or 64 sends) */
       fi }
  :: atomic { wpc == W_CONN ->                                /* connect_result() */
       if :: st_est -> next_call() :: else -> wpc = W_CONN_WAIT fi }
  :: atomic { wpc == W_CONN_WAIT && p2t < PCAP -> p2t++; p2t_edge = 1; wpc = W_CONN }   /* io_wait_writable() */

  /* ---- io_send() ---- */
  /* room: tx_cons (acquire) */
  :: atomic { wpc == W_ROOM ->
       if
       :: TXN - (myprod - tx_cons) > 0 ->
          n = MIN(want - put, TXN - (myprod - tx_cons));
          myprod = myprod + n; put = put + n; n = 0;
          wpc = W_STORE
       :: else -> wpc = W_FULL_FILL                          /* ring full */
       fi }
  :: atomic { wpc == W_STORE -> tx_prod = myprod; wpc = W_FETCH }   /* release store */
  /* atomic_fetch_and(&wants, ~WANT_TX) & WANT_TX: ring_doorbell() */
  :: atomic { wpc == W_FETCH ->
       if
       :: want_tx -> want_tx = 0; wpc = W_BELL
       :: else -> if :: put == want -> next_call() :: else -> wpc = W_ROOM fi
       fi }
  :: atomic { wpc == W_BELL ->
       if
       :: len(ctl) < CTLCAP -> wpc = W_KICK /* ctl_try_doorbell(), MSG_DONTWAIT */
       :: p2t < PCAP -> p2t++; p2t_edge = 1;
          if :: put == want -> next_call() :: else -> wpc = W_ROOM fi
       :: p2t >= PCAP -> wpc = W_KICK
       fi }
  :: atomic { wpc == W_KICK && len(ctl) < CTLCAP ->
#ifndef MUT_DOORBELL_DROP
       ctl!WAKE;
#endif
       if :: put == want -> next_call() :: else -> wpc = W_ROOM fi }
  /* ring full: io_fill() ... */
  :: atomic { wpc == W_FULL_FILL ->
       if
       :: p2t < PCAP && fills < FILLMAX -> p2t++; p2t_edge = 1; fills++
       :: else -> fills = 0; wpc = W_FULL_RECHECK          /* EAGAIN (or 64 sends) */
       fi }
  /* ... look again (tund may have freed room meanwhile) ... */
  :: atomic { wpc == W_FULL_RECHECK ->
       if :: TXN - (myprod - tx_cons) > 0 -> wpc = W_ROOM :: else -> wpc = W_FULL_WAIT fi }
  /* ... then io_wait_writable(): a blocking send() */
  :: atomic { wpc == W_FULL_WAIT && p2t < PCAP -> p2t++; p2t_edge = 1; wpc = W_ROOM }

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

/* (b) never more than one token byte queued (also asserted where tund sends) */
ltl one_token { [] (ntok <= 1) }

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
