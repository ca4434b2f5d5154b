/*
 * main.c - the mars command line: run a pipeline, validate a config, describe component
 * types (and generate the reference docs), print the version.
 *
 * Exit codes (also in --help and the README):
 *   0  success (a run that finished or was stopped cleanly; a valid config)
 *   1  the configuration is invalid (every problem printed as FILE:LINE:COL: message)
 *   2  usage error (unknown command or option, missing argument)
 *   3  mars could not start (io backend unavailable, a component failed to start)
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ev.h"
#include "core/log.h"
#include "config/config.h"
#include "control/api.h"
#include "control/apollo_config.h"
#include "control/components.h"
#include "engine/engine.h"
#include "config/registry.h"

enum { EXIT_OK = 0, EXIT_CONFIG = 1, EXIT_USAGE = 2, EXIT_START = 3 };

#define DEFAULT_CONFIG "/etc/mars/mars.yaml"

struct cli {
    const char *config;
    const char *log_level;
    const char *log_format;
    const char *io_backend;
    unsigned workers;
    bool markdown;
    bool once;
};

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: mars [OPTIONS]                run the pipeline in the config file\n"
            "       mars validate [OPTIONS]       check the config file and exit\n"
            "       mars describe [TYPE]          list component types, or one type's options\n"
            "       mars describe --markdown      print the whole option reference (docs)\n"
            "       mars --version | --help\n"
            "\n"
            "Options:\n"
            "  -c, --config FILE      configuration file (default " DEFAULT_CONFIG "), or\n"
            "                         apollo://APP/NAMESPACE?config_service=URL: the YAML of\n"
            "                         an Apollo namespace, reloaded on every release\n"
            "      --log-level LEVEL  error, warn, info, debug or trace (overrides log.level)\n"
            "      --log-format FMT   text or json (overrides log.format)\n"
            "      --workers N        worker threads (overrides runtime.workers)\n"
            "      --io-backend NAME  auto, io_uring or libevent (overrides runtime.io_backend\n"
            "                         and the MARS_IO_BACKEND environment variable)\n"
            "      --once             read what exists now (files to their end, stdin to EOF,\n"
            "                         demo to its count), deliver it, write checkpoints, exit\n"
            "  -V, --version          print version and compiled io backends\n"
            "  -h, --help             print this help\n"
            "\n"
            "Signals: SIGTERM or SIGINT stop reading and drain within runtime.shutdown_timeout\n"
            "(a second one abandons what is left); SIGHUP reloads the configuration file.\n"
            "\n"
            "Exit codes: 0 success, 1 invalid configuration, 2 usage error, 3 could not start.\n");
}

static int parse_args(int argc, char **argv, struct cli *cli)
{
    enum { OPT_LEVEL = 256, OPT_FORMAT, OPT_WORKERS, OPT_BACKEND, OPT_MARKDOWN, OPT_ONCE };
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"log-level", required_argument, NULL, OPT_LEVEL},
        {"log-format", required_argument, NULL, OPT_FORMAT},
        {"workers", required_argument, NULL, OPT_WORKERS},
        {"io-backend", required_argument, NULL, OPT_BACKEND},
        {"markdown", no_argument, NULL, OPT_MARKDOWN},
        {"once", no_argument, NULL, OPT_ONCE},
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
            cli->config = optarg;
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
        case OPT_ONCE:
            cli->once = true;
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
            printf("mars %s (io backends: %s)\n", MARS_VERSION, mars_ev_backends_compiled());
            exit(EXIT_OK);
        case 'h':
            usage(stdout);
            exit(EXIT_OK);
        default:
            usage(stderr);
            return -1;
        }
    }
    return 0;
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

static int load(const struct cli *cli, struct mars_config **cfg)
{
    struct mars_diag diag;
    char why[300];
    if (mars_apollo_config_is(cli->config) && !apollo_cfg &&
        !(apollo_cfg = mars_apollo_config_start(cli->config, why, sizeof(why)))) {
        fprintf(stderr, "mars: %s: %s\n", cli->config, why);
        return -EINVAL;
    }
    mars_diag_init(&diag);
    int rc = apollo_cfg ? mars_apollo_config_load(apollo_cfg, cfg, &diag)
                        : mars_config_load(cli->config, cfg, &diag);
    mars_diag_print(&diag, stderr);
    if (rc)
        fprintf(stderr, "mars: %s: %zu problem%s found\n", cli->config, mars_diag_count(&diag),
                mars_diag_count(&diag) == 1 ? "" : "s");
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
 * are joined. MARS_API_ADDRESS overrides api.address (documented with the option). */
static void api_up(struct mars_engine *e, void *arg)
{
    *(struct mars_api **)arg = mars_api_start(e, getenv("MARS_API_ADDRESS"));
    if (apollo_cfg) /* published releases reload this engine */
        mars_apollo_config_set_engine(apollo_cfg, e);
}

static void api_down(struct mars_engine *e, void *arg)
{
    struct mars_api **api = arg;
    if (apollo_cfg)
        mars_apollo_config_set_engine(apollo_cfg, NULL);
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
    struct mars_engine_opts opts = {
        .io_backend = cli->io_backend,
        .workers = cli->workers,
        .handle_signals = true,
        .once = cli->once,
        .on_running = api_up,
        .on_stopping = api_down,
        .hook_arg = &api,
        .config_path = cli->config,
        .load_config = apollo_cfg ? mars_apollo_config_load : NULL,
        .load_arg = apollo_cfg,
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
    mars_apollo_config_destroy(apollo_cfg);
    apollo_cfg = NULL;
    if (rc) {
        mars_error("-", "mars could not start");
        return EXIT_START;
    }
    mars_info("-", "mars stopped");
    return EXIT_OK;
}

int mars_describe(FILE *f, const char *type, bool markdown); /* describe.c */

int main(int argc, char **argv)
{
    struct cli cli = {.config = DEFAULT_CONFIG};
    const char *cmd = NULL;

    if (argc > 1 && argv[1][0] != '-') {
        cmd = argv[1];
        argv[1] = argv[0];
        argc--;
        argv++;
    }
    mars_components_register();
    if (parse_args(argc, argv, &cli))
        return EXIT_USAGE;
    if (!cmd || strcmp(cmd, "run") == 0) {
        if (optind < argc) {
            fprintf(stderr, "mars: unexpected argument '%s'\n", argv[optind]);
            return EXIT_USAGE;
        }
        return cmd_run(&cli);
    }
    if (strcmp(cmd, "validate") == 0)
        return optind < argc ? EXIT_USAGE : cmd_validate(&cli);
    if (strcmp(cmd, "describe") == 0) {
        const char *type = optind < argc ? argv[optind] : NULL;
        return mars_describe(stdout, type, cli.markdown) ? EXIT_USAGE : EXIT_OK;
    }
    fprintf(stderr, "mars: unknown command '%s'\n", cmd);
    usage(stderr);
    return EXIT_USAGE;
}
