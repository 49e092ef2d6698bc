/* bb-dma: a one-channel memory-to-memory DMA engine, as a breadboard C plugin.
 * An example device, not a model of real hardware.
 *
 * Region 0 "regs" (0x100 bytes):
 *   0x00 SRC    (64-bit) source guest-physical address
 *   0x08 DST    (64-bit) destination guest-physical address
 *   0x10 LEN    (32-bit) bytes to copy, at most the `max-len` property
 *   0x14 CTRL   (32-bit) write: bit 0 START, bit 1 IRQ enable (kept)
 *   0x18 STATUS (32-bit) bit 0 BUSY, bit 1 DONE, bit 2 ERROR; write 1s to clear DONE/ERROR
 *   0x1c ID     (32-bit) 0x444d4131 "DMA1"
 * Region 1 "stats" (0x1000 bytes):
 *   0x00 BYTES  (64-bit) bytes copied since reset
 *   0x08 XFERS  (64-bit) transfers completed since reset
 * A transfer completes `latency-ns` of virtual time after START (at once if 0): the copy is
 * done then, DONE (or ERROR) is set and IRQ 0 rises if enabled.
 *
 * Build switches used by the host's negative tests: BB_TEST_BAD_MAJOR, BB_TEST_NEWER_MINOR,
 * BB_TEST_OLD_MINOR, BB_TEST_SHORT_TYPE, BB_TEST_NULL_READ, BB_TEST_NO_INIT, BB_TEST_DUP_NAME.
 */
#include <breadboard/plugin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REG_SRC 0x00
#define REG_DST 0x08
#define REG_LEN 0x10
#define REG_CTRL 0x14
#define REG_STATUS 0x18
#define REG_ID 0x1c

#define CTRL_START 1u
#define CTRL_IRQ_EN 2u
#define ST_BUSY 1u
#define ST_DONE 2u
#define ST_ERROR 4u

#define DMA_ID 0x444d4131u
#define TIMER_DONE 0

typedef struct dma {
    bb_host *host;
    const bb_host_api *api;
    uint64_t src, dst, latency, max_len;
    uint32_t len, ctrl, status;
    uint64_t bytes, xfers;
} dma;

static void logf_(dma *d, uint32_t level, const char *fmt, unsigned long long a) {
    char buf[160];
    int n = snprintf(buf, sizeof buf, fmt, a);
    if (n < 0) return;
    if ((size_t)n >= sizeof buf) n = sizeof buf - 1;
    d->api->log(d->host, level, buf, (size_t)n);
}

static void update_irq(dma *d) {
    int level = (d->ctrl & CTRL_IRQ_EN) && (d->status & (ST_DONE | ST_ERROR));
    d->api->irq_set(d->host, 0, level);
}

static void complete(dma *d) {
    uint8_t bounce[256];
    uint32_t done = 0;
    int err = 0;
    while (done < d->len) {
        uint32_t n = d->len - done;
        if (n > sizeof bounce) n = sizeof bounce;
        if (d->api->dma_read(d->host, d->src + done, bounce, n) != BB_OK) {
            logf_(d, BB_LOG_GUEST_ERROR, "DMA source %#llx is not RAM", d->src + done);
            err = 1;
            break;
        }
        if (d->api->dma_write(d->host, d->dst + done, bounce, n) != BB_OK) {
            logf_(d, BB_LOG_GUEST_ERROR, "DMA destination %#llx is not writable RAM", d->dst + done);
            err = 1;
            break;
        }
        done += n;
    }
    d->bytes += done;
    d->status &= ~ST_BUSY;
    if (err) {
        d->status |= ST_ERROR;
    } else {
        d->status |= ST_DONE;
        d->xfers++;
    }
    update_irq(d);
}

static void start(dma *d) {
    if (d->status & ST_BUSY) {
        logf_(d, BB_LOG_GUEST_ERROR, "START while busy (len %llu)", d->len);
        return;
    }
    if (d->len > d->max_len) {
        logf_(d, BB_LOG_GUEST_ERROR, "LEN %llu is above max-len", d->len);
        d->status |= ST_ERROR;
        update_irq(d);
        return;
    }
    d->status |= ST_BUSY;
    if (d->latency == 0) {
        complete(d);
    } else {
        d->api->timer_mod(d->host, TIMER_DONE, d->api->now_ns(d->host) + d->latency);
    }
}

static void *dma_create(bb_host *host, const bb_host_api *api, char *err, size_t cap) {
    dma *d = calloc(1, sizeof *d);
    if (!d) {
        snprintf(err, cap, "bb-dma: out of memory");
        return NULL;
    }
    d->host = host;
    d->api = api;
    if (api->prop_u64(host, "latency-ns", &d->latency) != BB_OK ||
        api->prop_u64(host, "max-len", &d->max_len) != BB_OK) {
        snprintf(err, cap, "bb-dma: properties missing");
        free(d);
        return NULL;
    }
    if (d->max_len == 0) {
        snprintf(err, cap, "Property 'bb-dma.max-len' must not be 0");
        free(d);
        return NULL;
    }
    return d;
}

static void dma_destroy(void *p) { free(p); }

static uint64_t dma_read(void *p, uint32_t region, uint64_t off, uint32_t size) {
    dma *d = p;
    if (region == 1) {
        if (off == 0) return d->bytes;
        if (off == 8) return d->xfers;
        return 0;
    }
    switch (off) {
    case REG_SRC: return size == 8 ? d->src : (uint32_t)d->src;
    case REG_SRC + 4: return d->src >> 32;
    case REG_DST: return size == 8 ? d->dst : (uint32_t)d->dst;
    case REG_DST + 4: return d->dst >> 32;
    case REG_LEN: return d->len;
    case REG_CTRL: return d->ctrl;
    case REG_STATUS: return d->status;
    case REG_ID: return DMA_ID;
    default:
        logf_(d, BB_LOG_GUEST_ERROR, "read of unknown register %#llx", off);
        return 0;
    }
}

static void dma_write(void *p, uint32_t region, uint64_t off, uint32_t size, uint64_t v) {
    dma *d = p;
    if (region != 0) {
        logf_(d, BB_LOG_GUEST_ERROR, "write to read-only stats at %#llx", off);
        return;
    }
    switch (off) {
    case REG_SRC:
        d->src = size == 8 ? v : (d->src & ~0xffffffffull) | (uint32_t)v;
        break;
    case REG_SRC + 4: d->src = (d->src & 0xffffffffull) | (v << 32); break;
    case REG_DST:
        d->dst = size == 8 ? v : (d->dst & ~0xffffffffull) | (uint32_t)v;
        break;
    case REG_DST + 4: d->dst = (d->dst & 0xffffffffull) | (v << 32); break;
    case REG_LEN: d->len = (uint32_t)v; break;
    case REG_CTRL:
        d->ctrl = (uint32_t)v & CTRL_IRQ_EN;
        update_irq(d);
        if (v & CTRL_START) start(d);
        break;
    case REG_STATUS:
        d->status &= ~((uint32_t)v & (ST_DONE | ST_ERROR));
        update_irq(d);
        break;
    default:
        logf_(d, BB_LOG_UNIMP, "write to unknown register %#llx", off);
    }
}

static void dma_reset(void *p) {
    dma *d = p;
    d->src = d->dst = 0;
    d->len = d->ctrl = d->status = 0;
    d->bytes = d->xfers = 0;
    d->api->timer_del(d->host, TIMER_DONE);
    update_irq(d);
}

static void dma_timer(void *p, uint64_t token) {
    dma *d = p;
    if (token == TIMER_DONE && (d->status & ST_BUSY)) complete(d);
}

static int dma_write_fdt(void *p, bb_fdt *fdt) {
    dma *d = p;
    int r = d->api->fdt_prop_u32(fdt, "dma-channels", 1);
    if (r == BB_OK) r = d->api->fdt_prop_u32(fdt, "breadboard,max-len", (uint32_t)d->max_len);
    return r;
}

#ifndef BB_TEST_OLD_MINOR
static size_t dma_save(void *p, uint8_t *buf, size_t cap) {
    dma *d = p;
    if (buf && cap >= sizeof *d) memcpy(buf, d, sizeof *d);
    return sizeof *d;
}

static int dma_load(void *p, const uint8_t *buf, size_t len) {
    dma *d = p;
    dma tmp;
    if (len != sizeof tmp) return BB_ERR_INVAL;
    memcpy(&tmp, buf, sizeof tmp);
    tmp.host = d->host;
    tmp.api = d->api;
    *d = tmp;
    update_irq(d);
    return BB_OK;
}
#endif

static const bb_device_ops ops = {
#ifdef BB_TEST_OLD_MINOR
    .size = BB_DEVICE_OPS_SIZE_1_0,
#else
    .size = sizeof(bb_device_ops),
    .snapshot_save = dma_save,
    .snapshot_load = dma_load,
#endif
    .create = dma_create,
    .destroy = dma_destroy,
#ifdef BB_TEST_NULL_READ
    .read = NULL,
#else
    .read = dma_read,
#endif
    .write = dma_write,
    .reset = dma_reset,
    .timer = dma_timer,
    .write_fdt = dma_write_fdt,
};

static const bb_prop_decl props[] = {
    {sizeof(bb_prop_decl), BB_PROP_INT, "latency-ns", "0", "virtual ns from START to completion", 0},
    {sizeof(bb_prop_decl), BB_PROP_SIZE, "max-len", "1M", "largest transfer in bytes", 0xffffffffu},
};

static const bb_region_decl regions[] = {
    {sizeof(bb_region_decl), 0, "bb-dma.regs", 0x100},
    {sizeof(bb_region_decl), 0, "bb-dma.stats", 0x1000},
};

static const char *const compatible[] = {"breadboard,example-dma"};

static const bb_device_type types[] = {{
#ifdef BB_TEST_SHORT_TYPE
    .size = 16,
#else
    .size = sizeof(bb_device_type),
#endif
    .user_creatable = 1,
#ifdef BB_TEST_DUP_NAME
    .name = "ns16550a",
#else
    .name = "bb-dma",
#endif
    .description = "example memory-to-memory DMA engine (C plugin)",
    .compatible = compatible,
    .n_compatible = 1,
    .node_name = "dma",
    .props = props,
    .n_props = 2,
    .regions = regions,
    .n_regions = 2,
    .num_irqs = 1,
    .num_gpio_in = 0,
    .ops = &ops,
}};

#if defined(BB_TEST_BAD_MAJOR) || defined(BB_TEST_NEWER_MINOR) || defined(BB_TEST_OLD_MINOR)
const bb_plugin_abi breadboard_plugin_abi = {
    BB_PLUGIN_MAGIC,
#if defined(BB_TEST_BAD_MAJOR)
    BB_ABI_MAJOR + 1, 0,
#elif defined(BB_TEST_NEWER_MINOR)
    BB_ABI_MAJOR, BB_ABI_MINOR + 1,
#else
    BB_ABI_MAJOR, 0,
#endif
    sizeof(bb_plugin_info), sizeof(bb_device_type),
#ifdef BB_TEST_OLD_MINOR
    BB_DEVICE_OPS_SIZE_1_0,
#else
    sizeof(bb_device_ops),
#endif
    sizeof(bb_prop_decl), sizeof(bb_region_decl), BB_HOST_API_SIZE_1_0};
#else
BB_PLUGIN_DECLARE_ABI();
#endif

#ifndef BB_TEST_NO_INIT
int breadboard_plugin_init(const bb_host_api *host, bb_plugin_info *out) {
    if (host->abi_major != BB_ABI_MAJOR) return -1;
    out->name = "bb-dma";
    out->types = types;
    out->n_types = 1;
    return 0;
}
#endif
