/*
 * file_internal.h - what the parts of the `file` source share: file.c (options, instance
 * life cycle, the tick timer), scan.c (discovery: globs with **, excludes, inotify) and
 * tail.c (reading, lines, acknowledgements, rotation and truncation, checkpoints).
 *
 * Every worker has an instance; a file belongs to the instance on worker
 * hash(dev, ino) % workers, so its reads, lines and acks stay on one thread.
 */
#ifndef MARS_FILE_INTERNAL_H
#define MARS_FILE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include "core/ev.h"
#include "core/schema.h"
#include "component.h"

enum file_read_from { READ_FROM_BEGINNING, READ_FROM_END };
enum file_watch { WATCH_INOTIFY, WATCH_POLL };
enum file_charset { CHARSET_UTF8, CHARSET_BINARY };

struct file_conf {
    struct mars_strlist include, exclude;
    int read_from;
    uint64_t max_line_bytes;
    int oversize;
    char *line_delimiter;
    int64_t glob_interval;
    int64_t max_open_files;
    bool oldest_first;
    int64_t ignore_older;
    uint64_t fingerprint;
    int64_t checkpoint_interval;
    int watch;
    int charset;
    int64_t line_timeout;
    uint64_t read_size;
    int64_t rotate_wait;
    int64_t notify_delay; /* ns a change waits for its read (inotify); 0: at once */
};

/* Emitted-but-not-yet-acknowledged byte ranges of one file, in emission order. */
struct file_range {
    uint64_t end;    /* offset after the range */
    uint64_t marker; /* hash of the marker_len bytes before end */
    uint32_t marker_len;
    bool done;
};

enum tfile_state {
    TF_PENDING, /* known, waiting for a free descriptor (max_open_files) */
    TF_OPEN,
    TF_DORMANT, /* closed: read to its end and acknowledged; reopened if it grows */
};

#define FILE_MARKER_MAX 32

struct file_source;

/*
 * A layer over the file source (kubernetes_logs) that makes its own events of the lines
 * of each file: it keeps per-file state, and rewrites each batch of cut lines before it is
 * emitted. Called on the instance's worker.
 *   track   a file is tracked: returns its state (owned by the layer), NULL on -ENOMEM
 *   forget  the file is forgotten: free its state
 *   lines   the raw lines cut from a file are the events of b (exclusive, in file order,
 *           msg without the delimiter). Rewrite them in place (decode, drop, merge into
 *           fewer events; bytes made must live in b's arena). Returns NULL, or the first
 *           byte of a line (inside b's chunk) from which on the lines are given back: every
 *           event from there on must have been removed from b, and those bytes are kept in
 *           the file's carry and cut again with the next read (an unfinished partial line
 *           of the runtime). With `final` (line_timeout, truncation, --once) nothing may be
 *           given back, and the last event may be an unterminated line (MARS_EVF_PARTIAL).
 * Bytes given back are not acknowledged, so a checkpoint never passes a held line.
 */
struct file_hooks {
    void *(*track)(void *ctx, const char *path);
    void (*forget)(void *ctx, void *fstate);
    const char *(*lines)(void *ctx, void *fstate, struct mars_batch *b, bool final);
};

struct tfile {
    struct file_source *fs;
    char *path;
    dev_t dev;
    ino_t ino;
    int fd;
    enum tfile_state state;
    uint64_t read_off;     /* next byte to read */
    uint64_t emit_off;     /* first byte not yet emitted (start of the carried partial line) */
    uint64_t acked_off;    /* every byte before it is acknowledged (the checkpoint) */
    uint64_t size_seen;    /* size at the last stat */
    struct timespec mtime; /* modification time at the last sweep */
    struct timespec ctime; /* change time when it was closed (dormant): another file that
                            * got its inode has another one */
    uint32_t gen;          /* bumped on truncation: acks of older generations are ignored */
    uint64_t fp_hash;
    uint32_t fp_len;
    /* the bytes just before read_off, to notice a copytruncate that regrew past it */
    unsigned char tail[FILE_MARKER_MAX];
    uint32_t tail_len;
    char *carry; /* partial last line, copied out of the shared chunk */
    uint32_t carry_len;
    size_t carry_cap;
    bool carry_lines; /* the carry holds whole lines given back by hooks->lines */
    bool carry_dirty; /* the carry may hold an invalid UTF-8 sequence (charset utf-8) */
    uint8_t u8_held;  /* its last bytes begin a UTF-8 sequence the read cut: they are
                       * validated with the next read's bytes */
    void *hstate;     /* hooks->track's state */
    struct mars_cutter cut;
    struct file_range *ranges; /* ring */
    uint32_t rhead, rcount, rcap;
    uint64_t rseq;    /* sequence number of ranges[rhead] */
    uint32_t batches; /* emitted and not acknowledged yet, of any generation */
    int64_t last_change_ns, last_read_ns;
    int64_t left_ns;    /* when it left its path (at_path turned false) */
    unsigned seen_scan; /* scan generation that last saw it at a matched path */
    bool at_path;       /* some matched path still leads to it */
    bool vanished;      /* pending, but its path was gone when it was opened: renamed or
                         * deleted, the next scan tells which */
    bool reading, queued, eof;
    bool notified;   /* named by an inotify event: read when notify_delay ends */
    bool initial;    /* found by the source's first scan */
    bool gave_up;    /* counted and logged as given up (once per file) */
    bool copy_check; /* new, read from 0: is it a copy of what was read? (see identity.c) */
    int wd;          /* inotify watch of its directory, or -1 */
    struct mars_ev_op op;
    struct mars_chunk *rchunk; /* chunk of the read in flight (a reference) */
    uint32_t rpos, rlen;       /* where its new bytes land: after the carry at rpos */
    uint32_t rback;            /* the bytes before the offset it reads again first */
    struct tfile *next_ready;
};

struct file_stats {
    uint64_t rotations, truncations, gave_up, invalid_utf8;
    uint64_t cut_lines; /* unfinished lines dropped at a truncation (tail.c) */
    uint64_t scans;     /* expansions of the include patterns (scan.c) */
};

/* The instance's series in the metrics registry (label component_id), and what of
 * file_stats they already hold. */
struct file_metrics {
    struct mars_mseries *open, *tracked, *rotations, *truncations, *gave_up, *cut_lines, *scans;
    struct file_stats published;
    unsigned shard;
};

/* What a file truncated while running had been read to (copytruncate): a copy of it found
 * later starts there. */
struct file_read_head {
    uint64_t fp_hash, off, marker;
    uint64_t path_hash; /* of the path it was read at: a file there later is no copy of it */
    uint32_t fp_len, marker_len;
};

#define FILE_READ_HEADS 16

struct file_dir {
    char *path;
    int wd;
    bool changes; /* also hears of writes: a file of this instance is in it (scan.c) */
};

struct file_source {
    struct mars_source *src;
    const struct file_conf *conf;
    unsigned widx, nw;
    struct mars_ckpt *ckpt;
    bool first_start, initial_scan_done, stopping;
    /* tracked files: open, pending and dormant */
    struct tfile **files;
    size_t nfiles, cap;
    size_t nopen, max_open;
    bool fds_wanted; /* files wait for a descriptor: drained ones give theirs up at once */
    struct tfile *ready_head, *ready_tail;
    unsigned reads_inflight;
    /* the chunk reads land in, shared by all files of this instance */
    struct mars_chunk *chunk;
    uint32_t chunk_pos;
    bool waiting_memory;
    /* timers and watches */
    struct mars_ev_op tick;
    bool tick_armed;
    int64_t next_scan_ns;
    unsigned scan_gen;
    int ifd;
    struct file_dir *dirs; /* watched directories */
    size_t ndirs, dirs_cap;
    uint32_t *dir_index; /* dirs by path: open addressing, slot = index + 1; NULL: rebuild */
    size_t dir_index_cap;
    struct mars_ev_op iop;
    bool iop_armed;
    struct mars_ev_op dop; /* notify_delay: changed files wait for their read */
    bool dop_armed;
    struct file_stats st;
    struct file_metrics m;
    struct file_read_head heads[FILE_READ_HEADS]; /* ring of truncated files' read heads */
    unsigned nheads;
    const struct file_hooks *hooks; /* NULL for the plain file source */
    void *hctx;
};

/* file.c: the instance life cycle, shared with the layers over the file source. conf and
 * hooks (may be NULL) are borrowed until mars_file_source_destroy(); the instance state
 * (mars_source_state) is the struct file_source. */
int mars_file_source_init(struct mars_source *s, const struct file_conf *conf,
                          const struct file_hooks *hooks, void *hctx);
int mars_file_source_start(struct mars_source *s);
void mars_file_source_resume(struct mars_source *s);
void mars_file_source_stop(struct mars_source *s);
void mars_file_source_destroy(struct mars_source *s);
void mars_file_maybe_finish(struct file_source *fs);
void mars_file_metrics_publish(struct file_source *fs);
void mars_file_scan_soon(struct file_source *fs);

/* scan.c */
void mars_file_scan(struct file_source *fs);
int mars_file_watch_init(struct file_source *fs);
void mars_file_watch_fini(struct file_source *fs);
void mars_file_watch_add(struct file_source *fs, struct tfile *f);

/* identity.c */
bool mars_file_hash_range(int fd, uint64_t off, uint32_t len, uint64_t *out);
void mars_file_set_offsets(struct tfile *f, uint64_t off);
/* A new size was seen: note it, and grow a short head fingerprint over an unchanged head. */
void mars_file_note_size(struct file_source *fs, struct tfile *f, uint64_t size);
/* A file is truncated after being read to f->read_off: remember where, for its copy. */
void mars_file_note_read_head(struct file_source *fs, const struct tfile *f);
void mars_file_drop_cut_line(struct file_source *fs, struct tfile *f);
/* Before the first bytes of a new file are read: is it a copy of a file already read?
 * Then its offset moves past what was read. True: not yet known (a copy still being
 * written), do not read it now. */
bool mars_file_check_copy(struct file_source *fs, struct tfile *f);
/* Opens files waiting for a descriptor while there is room under max_open_files. */
void mars_file_open_pending(struct file_source *fs);
/* Bytes were read past a short head fingerprint: hash them in. */
void mars_file_grow_fingerprint(struct file_source *fs, struct tfile *f);

/* tail.c */
struct tfile *mars_file_track(struct file_source *fs, const char *path, const struct stat *st);
struct tfile *mars_file_find(struct file_source *fs, dev_t dev, ino_t ino);
void mars_file_schedule(struct file_source *fs, struct tfile *f);
void mars_file_pump(struct file_source *fs);
void mars_file_sweep(struct file_source *fs, int64_t now);
void mars_file_forget(struct file_source *fs, struct tfile *f);
/* The file left its path (renamed away, deleted, link retargeted): its grace starts now. */
void mars_file_left(struct file_source *fs, struct tfile *f);
/* Counts and logs (once per file) a file whose bytes after `done` will never be read. */
void mars_file_give_up(struct file_source *fs, struct tfile *f, uint64_t lost, const char *why);
void mars_file_close_all(struct file_source *fs);
bool mars_file_all_idle(const struct file_source *fs);
void mars_file_flush_carries(struct file_source *fs);
/* Emits one file's unfinished last line (the file is gone, it will not be finished). */
void mars_file_flush_carry(struct file_source *fs, struct tfile *f);

#endif
