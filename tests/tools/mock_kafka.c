/*
 * mock_kafka.c - `mock-kafka`, the Kafka peer of the integration tests and the bench: a
 * librdkafka mock cluster (rdkafka_mock.h) listening on real loopback sockets.
 *
 *   mock-kafka [-b BROKERS] [-t TOPIC:PARTITIONS]...
 *
 * Prints the bootstrap list ("127.0.0.1:PORT,...") as its first stdout line, then reads
 * one command per stdin line and answers each with "ok" or "error: why" on stdout:
 *
 *   topic NAME PARTITIONS           create a topic (replication factor min(3, brokers))
 *   errors APIKEY CODE [CODE...]    the next requests of ApiKey (Produce = 0, Fetch = 1,
 *                                   OffsetCommit = 8) fail with these error codes in turn
 *   down ID / up ID                 take broker ID (1-based) away / bring it back
 *   rtt ID MS                       delay broker ID's responses
 *
 * It exits when stdin closes (the test's end), so a killed test leaves nothing behind.
 * Thread: main only; the mock cluster runs its own thread inside librdkafka.
 */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int create_topic(rd_kafka_mock_cluster_t *mc, int brokers, const char *name, int parts)
{
    int rf = brokers < 3 ? brokers : 3;
    rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(mc, name, parts, rf);
    if (err) {
        printf("error: %s\n", rd_kafka_err2str(err));
        return -1;
    }
    return 0;
}

static void command(rd_kafka_mock_cluster_t *mc, int brokers, char *line)
{
    char *save = NULL, *verb = strtok_r(line, " \t\r\n", &save);
    char *a1 = verb ? strtok_r(NULL, " \t\r\n", &save) : NULL;
    char *a2 = a1 ? strtok_r(NULL, " \t\r\n", &save) : NULL;
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;

    if (!verb)
        return;
    if (!strcmp(verb, "topic") && a1 && a2) {
        if (create_topic(mc, brokers, a1, atoi(a2)))
            return;
    } else if (!strcmp(verb, "errors") && a1 && a2) {
        rd_kafka_resp_err_t codes[64];
        size_t n = 0;
        for (char *c = a2; c && n < 64; c = strtok_r(NULL, " \t\r\n", &save))
            codes[n++] = (rd_kafka_resp_err_t)atoi(c);
        rd_kafka_mock_push_request_errors_array(mc, (int16_t)atoi(a1), n, codes);
    } else if (!strcmp(verb, "down") && a1) {
        err = rd_kafka_mock_broker_set_down(mc, atoi(a1));
    } else if (!strcmp(verb, "up") && a1) {
        err = rd_kafka_mock_broker_set_up(mc, atoi(a1));
    } else if (!strcmp(verb, "rtt") && a1 && a2) {
        err = rd_kafka_mock_broker_set_rtt(mc, atoi(a1), atoi(a2));
    } else {
        printf("error: unknown command %s\n", verb);
        fflush(stdout);
        return;
    }
    if (err)
        printf("error: %s\n", rd_kafka_err2str(err));
    else
        printf("ok\n");
    fflush(stdout);
}

int main(int argc, char **argv)
{
    int brokers = 3, opt;
    char errstr[256], line[1024];

    while ((opt = getopt(argc, argv, "b:t:")) != -1)
        if (opt == 'b')
            brokers = atoi(optarg);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!rk) {
        fprintf(stderr, "mock-kafka: %s\n", errstr);
        return 1;
    }
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, brokers);
    if (!mc) {
        fprintf(stderr, "mock-kafka: cannot start the mock cluster\n");
        return 1;
    }
    optind = 1;
    while ((opt = getopt(argc, argv, "b:t:")) != -1) {
        if (opt != 't')
            continue;
        char *colon = strrchr(optarg, ':');
        int parts = colon ? atoi(colon + 1) : 1;
        if (colon)
            *colon = '\0';
        if (create_topic(mc, brokers, optarg, parts > 0 ? parts : 1))
            return 1;
    }
    printf("%s\n", rd_kafka_mock_cluster_bootstraps(mc));
    fflush(stdout);
    while (fgets(line, sizeof(line), stdin))
        command(mc, brokers, line);
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
    return 0;
}
