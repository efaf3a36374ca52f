/*
 * stack/lwip_glue.h — what tund needs from the lwIP hook layer.
 */
#ifndef ENOSHIM_LWIP_GLUE_H
#define ENOSHIM_LWIP_GLUE_H

#include <stdint.h>

/* Call once after lwip_init(): ISN secret, ext-arg slot. */
int glue_init(void);

#endif
