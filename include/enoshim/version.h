/*
 * enoshim/version.h — the one version string of enoshim.  tund, enoctl,
 * tund-nat, enorun and libenoshim.so all print this one (--version).
 */
#ifndef ENOSHIM_VERSION_H
#define ENOSHIM_VERSION_H

#define ENOSHIM_VERSION "0.6.0"

#endif
