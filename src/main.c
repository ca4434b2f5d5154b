/*
 * main.c - the mars command line: run a pipeline, validate a config, describe component
 * types (and generate the reference docs and the man page), print the version, and show a
 * running mars live (`mars top`, control/top.c).
 *
 * Exit codes (also in --help and the README):
 *   0  success (a run that finished or was stopped cleanly; a valid config)
 *   1  the configuration is invalid (every problem printed as FILE:LINE:COL: message)
 *   2  usage error (unknown command or option, missing argument)
 *   3  mars could not start (io backend unavailable, a component failed to start)
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mars_build.h" /* generated: MARS_GIT_COMMIT, MARS_BUILD_DATE */

#include "core/curl_api.h"
#include "core/ev.h"
#include "core/log.h"
#include "config/config.h"
#include "control/api.h"
#include "control/apollo_config.h"
#include "control/components.h"
#include "control/config_watch.h"
#include "control/legacy.h"
#include "control/top.h"
#include "engine/engine.h"
#include "engine/instance.h"
#include "config/registry.h"

enum { EXIT_OK = 0, EXIT_CONFIG = 1, EXIT_USAGE = 2, EXIT_START = 3 };

#define DEFAULT_CONFIG "/etc/mars/mars.yaml"

#define MAX_CONFIGS 64

struct cli {
    const char *configs[MAX_CONFIGS]; /* -c in order; DEFAULT_CONFIG when none */
    size_t nconfigs;
    char *config; /* for messages: the -c paths joined by ", " (owned) */
    const char *log_level;
    const char *log_format;
    const char *io_backend;
    unsigned workers;
    bool markdown;
    bool man;
    bool once;
    bool watch_config;
};

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: mars [OPTIONS]                run the pipeline in the config file\n"
            "       mars validate [OPTIONS]       check the config file and exit\n"
            "       mars describe [TYPE]          list component types, or one type's options\n"
            "       mars describe --markdown      print the whole option reference (docs)\n"
            "       mars describe --man           the same as a man page, mars(1), in roff\n"
            "       mars top [ADDRESS]            live view of a running mars's components\n"
            "                                     (its admin API: HOST:PORT or a socket path;\n"
            "                                     default $MARS_API_ADDRESS or 127.0.0.1:8686)\n"
            "       mars convert-legacy OLD.yaml  print a mars config doing what the old\n"
            "                                     mars-agent's config did, with notes\n"
            "       mars version | --version | --help\n"
            "\n"
            "Options:\n"
            "  -c, --config PATH      configuration file (default " DEFAULT_CONFIG "); given\n"
            "                         again, the files merge into one pipeline; a directory\n"
            "                         stands for its *.yaml and *.yml files in name order; or\n"
            "                         apollo://APP/NAMESPACE?config_service=URL: the YAML of\n"
            "                         an Apollo namespace, reloaded on every release\n"
            "      --log-level LEVEL  error, warn, info, debug or trace (overrides log.level)\n"
            "      --log-format FMT   text or json (overrides log.format)\n"
            "      --workers N        worker threads (overrides runtime.workers)\n"
            "      --io-backend NAME  auto, io_uring or libevent (overrides runtime.io_backend\n"
            "                         and the MARS_IO_BACKEND environment variable)\n"
            "      --watch-config     reload when the config files change (inotify on their\n"
            "                         directories, so a Kubernetes ConfigMap update counts)\n"
            "      --once             read what exists now (files to their end, stdin to EOF,\n"
            "                         demo to its count), deliver it, write checkpoints, exit\n"
            "  -V, --version          print version, io backends, commit, build date\n"
            "  -h, --help             print this help\n"
            "\n"
            "Signals: SIGTERM or SIGINT stop reading and drain within runtime.shutdown_timeout\n"
            "(a second one abandons what is left); SIGHUP reloads the configuration files.\n"
            "\n"
            "Exit codes: 0 success, 1 invalid configuration, 2 usage error, 3 could not start.\n");
}

/* The default file, the Apollo rule and the name used in messages. */
static int finish_args(struct cli *cli)
{
    size_t len = 1;
    if (cli->nconfigs == 0)
        cli->configs[cli->nconfigs++] = DEFAULT_CONFIG;
    for (size_t i = 0; i < cli->nconfigs; i++) {
        if (cli->nconfigs > 1 && mars_apollo_config_is(cli->configs[i])) {
            fprintf(stderr, "mars: an apollo:// configuration cannot be merged with other -c\n");
            return -1;
        }
        if (cli->watch_config && mars_apollo_config_is(cli->configs[i])) {
            fprintf(stderr, "mars: --watch-config watches files; an apollo:// configuration "
                            "reloads on every release already\n");
            return -1;
        }
        len += strlen(cli->configs[i]) + 2;
    }
    if (!(cli->config = malloc(len)))
        return -1;
    cli->config[0] = '\0';
    for (size_t i = 0; i < cli->nconfigs; i++) {
        if (i)
            strcat(cli->config, ", ");
        strcat(cli->config, cli->configs[i]);
    }
    return 0;
}

/* The first line's shape is relied on by scripts (bench/harness.py reads the backends). */
static void print_version(void)
{
    printf("mars %s (io backends: %s)\ncommit: %s\nbuilt: %s\n", MARS_VERSION,
           mars_ev_backends_compiled(), MARS_GIT_COMMIT, MARS_BUILD_DATE);
}

static int parse_args(int argc, char **argv, struct cli *cli)
{
    enum {
        OPT_LEVEL = 256,
        OPT_FORMAT,
        OPT_WORKERS,
        OPT_BACKEND,
        OPT_MARKDOWN,
        OPT_MAN,
        OPT_ONCE,
        OPT_WATCH,
    };
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"log-level", required_argument, NULL, OPT_LEVEL},
        {"log-format", required_argument, NULL, OPT_FORMAT},
        {"workers", required_argument, NULL, OPT_WORKERS},
        {"io-backend", required_argument, NULL, OPT_BACKEND},
        {"markdown", no_argument, NULL, OPT_MARKDOWN},
        {"man", no_argument, NULL, OPT_MAN},
        {"once", no_argument, NULL, OPT_ONCE},
        {"watch-config", no_argument, NULL, OPT_WATCH},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    char *end;
    long n;

    while ((c = getopt_long(argc, argv, "+c:Vh", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            if (cli->nconfigs == MAX_CONFIGS) {
                fprintf(stderr, "mars: at most %d -c options (use a directory)\n", MAX_CONFIGS);
                return -1;
            }
            cli->configs[cli->nconfigs++] = optarg;
            break;
        case OPT_LEVEL:
            cli->log_level = optarg;
            break;
        case OPT_FORMAT:
            cli->log_format = optarg;
            break;
        case OPT_BACKEND:
            cli->io_backend = optarg;
            break;
        case OPT_MARKDOWN:
            cli->markdown = true;
            break;
        case OPT_MAN:
            cli->man = true;
            break;
        case OPT_ONCE:
            cli->once = true;
            break;
        case OPT_WATCH:
            cli->watch_config = true;
            break;
        case OPT_WORKERS:
            n = strtol(optarg, &end, 10);
            if (*end || n < 1 || n > 256) {
                fprintf(stderr, "mars: --workers needs a number from 1 to 256\n");
                return -1;
            }
            cli->workers = (unsigned)n;
            break;
        case 'V':
            print_version();
            exit(EXIT_OK);
        case 'h':
            usage(stdout);
            exit(EXIT_OK);
        default:
            usage(stderr);
            return -1;
        }
    }
    return finish_args(cli);
}

/* Applies log settings: CLI flags win over the config, which wins over defaults. */
static int setup_log(const struct cli *cli, const struct mars_config *cfg)
{
    enum mars_log_level level = cfg ? (enum mars_log_level)cfg->top.log.level : MARS_LOG_INFO;
    enum mars_log_format fmt = cfg ? (enum mars_log_format)cfg->top.log.format : MARS_LOG_TEXT;
    if (cli->log_level && mars_log_level_parse(cli->log_level, &level)) {
        fprintf(stderr, "mars: --log-level must be error, warn, info, debug or trace\n");
        return -1;
    }
    if (cli->log_format) {
        if (strcmp(cli->log_format, "json") == 0)
            fmt = MARS_LOG_JSON;
        else if (strcmp(cli->log_format, "text") == 0)
            fmt = MARS_LOG_TEXT;
        else {
            fprintf(stderr, "mars: --log-format must be text or json\n");
            return -1;
        }
    }
    mars_log_setup(level, fmt);
    return 0;
}

/* mars's own configuration from Apollo (-c apollo://...), started by load(). */
static struct mars_apollo_config *apollo_cfg;
/* --watch-config, started by cmd_run() once the first configuration loaded. */
static struct mars_config_watch *config_watch;

/* A reload reads the same -c paths again (struct mars_engine_opts load_config). */
static int load_files(void *arg, struct mars_config **out, struct mars_diag *diag)
{
    const struct cli *cli = arg;
    return mars_config_load_paths(cli->configs, cli->nconfigs, out, diag);
}

static int load(const struct cli *cli, struct mars_config **cfg)
{
    struct mars_diag diag;
    char why[300];
    if (mars_apollo_config_is(cli->config) && !apollo_cfg &&
        !(apollo_cfg = mars_apollo_config_start(cli->configs[0], why, sizeof(why)))) {
        fprintf(stderr, "mars: %s: %s\n", cli->config, why);
        return -EINVAL;
    }
    mars_diag_init(&diag);
    int rc = apollo_cfg ? mars_apollo_config_load(apollo_cfg, cfg, &diag)
                        : mars_config_load_paths(cli->configs, cli->nconfigs, cfg, &diag);
    mars_diag_print(&diag, stderr);
    if (rc)
        fprintf(stderr, "mars: %s: %zu problem%s found\n", cli->config, mars_diag_total(&diag),
                mars_diag_total(&diag) == 1 ? "" : "s");
    mars_diag_fini(&diag);
    return rc;
}

static int cmd_validate(const struct cli *cli)
{
    struct mars_config *cfg = NULL;
    if (load(cli, &cfg)) {
        mars_apollo_config_destroy(apollo_cfg);
        return EXIT_CONFIG;
    }
    printf("%s: valid (%u components)\n", cli->config, cfg->n);
    mars_config_destroy(cfg);
    mars_apollo_config_destroy(apollo_cfg);
    return EXIT_OK;
}

/* The admin API runs beside the engine: started once its workers run, stopped before they
 * are joined. MARS_API_ADDRESS overrides api.address (documented with the option). An API
 * that cannot listen (a busy port) stops mars from starting, as a busy prometheus_exporter
 * port does: a node agent without its probes would be restarted by Kubernetes anyway. */
static int api_up(struct mars_engine *e, void *arg)
{
    struct mars_api *api = mars_api_start(e, getenv("MARS_API_ADDRESS"));
    *(struct mars_api **)arg = api;
    if (!api && mars_engine_config(e)->top.api.enabled)
        return -EIO;
    if (apollo_cfg) /* published releases reload this engine */
        mars_apollo_config_set_engine(apollo_cfg, e);
    mars_config_watch_set_engine(config_watch, e);
    return 0;
}

static void api_down(struct mars_engine *e, void *arg)
{
    struct mars_api **api = arg;
    if (apollo_cfg)
        mars_apollo_config_set_engine(apollo_cfg, NULL);
    mars_config_watch_set_engine(config_watch, NULL);
    mars_api_stop(*api);
    *api = NULL;
    (void)e;
}

static int cmd_run(const struct cli *cli)
{
    struct mars_api *api = NULL;
    struct mars_config *cfg = NULL;
    if (setup_log(cli, NULL))
        return EXIT_USAGE;
    if (load(cli, &cfg)) {
        mars_apollo_config_destroy(apollo_cfg);
        return EXIT_CONFIG;
    }
    if (setup_log(cli, cfg)) {
        mars_config_destroy(cfg);
        mars_apollo_config_destroy(apollo_cfg);
        return EXIT_USAGE;
    }
    char why[300];
    if (cli->watch_config &&
        !(config_watch = mars_config_watch_start(cli->configs, cli->nconfigs, why, sizeof(why)))) {
        mars_error("-", "--watch-config: %s", why);
        mars_config_destroy(cfg);
        return EXIT_START;
    }
    if (config_watch)
        mars_info("-", "watching %s for changes", cli->config);
    struct mars_engine_opts opts = {
        .io_backend = cli->io_backend,
        .workers = cli->workers,
        .handle_signals = true,
        .once = cli->once,
        .on_running = api_up,
        .on_stopping = api_down,
        .hook_arg = &api,
        .config_path = cli->config,
        .load_config = apollo_cfg ? mars_apollo_config_load : load_files,
        .load_arg = apollo_cfg ? (void *)apollo_cfg : (void *)cli,
    };
    int rc;
    /* A reload (SIGHUP, POST /api/v1/reload) stops the engine gracefully with a validated
     * configuration waiting: run that one next. Checkpoints carry the sources over. */
    for (;;) {
        struct mars_engine *e = mars_engine_create(cfg, &opts);
        rc = e ? mars_engine_run(e) : -EIO;
        struct mars_config *next = e ? mars_engine_take_reload(e) : NULL;
        mars_engine_destroy(e);
        mars_config_destroy(cfg);
        cfg = next;
        if (rc || !cfg)
            break;
        if (setup_log(cli, cfg)) {
            rc = -EINVAL;
            break;
        }
        mars_info("-", "configuration reloaded from %s", cli->config);
    }
    mars_config_destroy(cfg);
    mars_keep_drop_all(); /* hand-overs of a reload that did not get to start */
    mars_config_watch_destroy(config_watch);
    config_watch = NULL;
    mars_apollo_config_destroy(apollo_cfg);
    apollo_cfg = NULL;
    if (rc) {
        mars_error("-", "mars could not start");
        return EXIT_START;
    }
    mars_info("-", "mars stopped");
    return EXIT_OK;
}

int mars_describe(FILE *f, const char *type, bool markdown);         /* describe.c */
int mars_describe_man(FILE *f, const char *usage, const char *date); /* describe.c */

/* The man page carries --help verbatim, so the two cannot differ. */
static int describe_man(void)
{
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    if (!m)
        return -ENOMEM;
    usage(m);
    fclose(m);
    int rc = mars_describe_man(stdout, text, MARS_BUILD_DATE);
    free(text);
    return rc;
}

/* A run blocks the signals the engine handles before it does anything else: one that
 * arrives while the config loads or the engine starts (a pod deleted right after it
 * started) stays pending until the engine's signalfd reads it, and mars stops cleanly
 * instead of dying by the default action. The engine blocks the same set again; spawned
 * children get a clean mask (core/spawn.c). */
static void hold_signals(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    signal(SIGPIPE, SIG_IGN);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
}

static int cmd_convert_legacy(const char *path)
{
    struct mars_diag diag;
    mars_diag_init(&diag);
    int rc = mars_legacy_convert(path, stdout, &diag);
    if (rc) {
        mars_diag_print(&diag, stderr);
        fprintf(stderr, "mars: %s: not converted (%zu problem%s)\n", path, mars_diag_count(&diag),
                mars_diag_count(&diag) == 1 ? "" : "s");
    }
    mars_diag_fini(&diag);
    return rc ? EXIT_CONFIG : EXIT_OK;
}

int main(int argc, char **argv)
{
    struct cli cli = {0};
    const char *cmd = NULL;
    int rc;

    mars_curl_env_init(); /* before any thread: GnuTLS, loaded with libcurl, stays idle */
    if (argc <= 1 || argv[1][0] == '-' || strcmp(argv[1], "run") == 0)
        hold_signals();
    if (argc > 1 && argv[1][0] != '-') {
        cmd = argv[1];
        argv[1] = argv[0];
        argc--;
        argv++;
    }
    mars_components_register();
    if (parse_args(argc, argv, &cli)) {
        rc = EXIT_USAGE;
    } else if (!cmd || strcmp(cmd, "run") == 0) {
        if (optind < argc) {
            fprintf(stderr, "mars: unexpected argument '%s'\n", argv[optind]);
            rc = EXIT_USAGE;
        } else {
            rc = cmd_run(&cli);
        }
    } else if (strcmp(cmd, "validate") == 0) {
        rc = optind < argc ? EXIT_USAGE : cmd_validate(&cli);
    } else if (strcmp(cmd, "version") == 0) {
        if (optind < argc) {
            fprintf(stderr, "mars: unexpected argument '%s'\n", argv[optind]);
            rc = EXIT_USAGE;
        } else {
            print_version();
            rc = EXIT_OK;
        }
    } else if (strcmp(cmd, "top") == 0) {
        if (optind + 1 < argc) {
            fprintf(stderr, "mars: unexpected argument '%s'\n", argv[optind + 1]);
            rc = EXIT_USAGE;
        } else {
            rc = mars_top_run(optind < argc ? argv[optind] : NULL) ? EXIT_START : EXIT_OK;
        }
    } else if (strcmp(cmd, "convert-legacy") == 0) {
        rc = optind + 1 != argc ? (usage(stderr), EXIT_USAGE) : cmd_convert_legacy(argv[optind]);
    } else if (strcmp(cmd, "describe") == 0 && cli.man) {
        rc = optind < argc ? EXIT_USAGE : describe_man() ? EXIT_START : EXIT_OK;
    } else if (strcmp(cmd, "describe") == 0) {
        const char *type = optind < argc ? argv[optind] : NULL;
        rc = mars_describe(stdout, type, cli.markdown) ? EXIT_USAGE : EXIT_OK;
    } else {
        fprintf(stderr, "mars: unknown command '%s'\n", cmd);
        usage(stderr);
        rc = EXIT_USAGE;
    }
    free(cli.config);
    return rc;
}
