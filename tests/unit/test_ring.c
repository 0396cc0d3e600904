/* ring: a tenant's recent events, bounded by count and bytes (pure). */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <string.h>

#include "../../sse/ring.h"
#include "suites.h"

/* Pushes event "<n>-0" of type t (data of len bytes). Returns ring_push's. */
static int push(struct ring *r, int n, const char *topic, int close, size_t len)
{
	static char data[4096];
	char id[24];
	struct frames f;
	struct bus_entry e;

	memset(data, 'd', sizeof(data));
	snprintf(id, sizeof(id), "%d-0", n);
	e = (struct bus_entry){ id, "t", topic, data, len, close };
	CU_ASSERT_FATAL(frames_encode(&f, &e) == 0);
	return ring_push(r, &e, &f);
}

static void test_frames_encode_once(void)
{
	const struct bus_entry e = { "5-1", "task.done", "task:1", "{\"a\":1}", 7, 1 };
	struct frames f;

	CU_ASSERT_EQUAL_FATAL(frames_encode(&f, &e), 0);
	CU_ASSERT_STRING_EQUAL(buf_str(&f.event), "id: 5-1\nevent: task.done\ndata: {\"a\":1}\n\n");
	CU_ASSERT_STRING_EQUAL(buf_str(&f.close), "id: 5-1\nevent: close\ndata: {}\n\n");
	frames_release(&f);
	CU_ASSERT_PTR_NULL(f.event.data);
}

static void test_count_bound_drops_the_oldest(void)
{
	struct ring r;

	ring_init(&r, 4, 1 << 20);
	for (int i = 1; i <= 6; i++)
		CU_ASSERT_EQUAL(push(&r, i, NULL, 0, 10), 0);
	CU_ASSERT_EQUAL(r.len, 4);
	CU_ASSERT_STRING_EQUAL(ring_at(&r, 0)->e.id, "3-0");
	CU_ASSERT_STRING_EQUAL(ring_at(&r, 3)->e.id, "6-0");
	CU_ASSERT_EQUAL(ring_find(&r, "3-0"), 0);
	CU_ASSERT_EQUAL(ring_find(&r, "6-0"), 3);
	CU_ASSERT_EQUAL(ring_find(&r, "2-0"), -1);
	CU_ASSERT_EQUAL(ring_find(&r, "60"), -1);
	/* what is kept: id, type, topic, close, and the frames */
	CU_ASSERT_EQUAL(push(&r, 7, "job:9", 1, 3), 0);
	CU_ASSERT_STRING_EQUAL(ring_at(&r, 3)->e.topic, "job:9");
	CU_ASSERT_EQUAL(ring_at(&r, 3)->e.close, 1);
	CU_ASSERT_PTR_NULL(ring_at(&r, 2)->e.topic);
	CU_ASSERT_STRING_EQUAL(buf_str(&ring_at(&r, 3)->f.event), "id: 7-0\nevent: t\ndata: ddd\n\n");
	ring_release(&r);
	CU_ASSERT_EQUAL(r.len, 0);
}

static void test_byte_bound(void)
{
	struct ring r;
	size_t one;

	ring_init(&r, 100, 1000);
	CU_ASSERT_EQUAL(push(&r, 1, NULL, 0, 200), 0);
	one = r.bytes;
	CU_ASSERT(one > 200 && one < 250);
	for (int i = 2; i <= 10; i++)
		CU_ASSERT_EQUAL(push(&r, i, NULL, 0, 200), 0);
	CU_ASSERT(r.bytes <= 1000);
	CU_ASSERT_EQUAL(r.len, 1000 / one);
	CU_ASSERT_STRING_EQUAL(ring_at(&r, r.len - 1)->e.id, "10-0");
	/* one event larger than the bound is kept, alone */
	CU_ASSERT_EQUAL(push(&r, 11, NULL, 0, 2000), 0);
	CU_ASSERT_EQUAL(r.len, 1);
	CU_ASSERT_STRING_EQUAL(ring_at(&r, 0)->e.id, "11-0");
	/* clear keeps the slots for reuse */
	ring_clear(&r);
	CU_ASSERT_EQUAL(r.len, 0);
	CU_ASSERT_EQUAL(r.bytes, 0);
	CU_ASSERT_PTR_NOT_NULL(r.slot);
	CU_ASSERT_EQUAL(ring_find(&r, "11-0"), -1);
	CU_ASSERT_EQUAL(push(&r, 12, NULL, 0, 1), 0);
	CU_ASSERT_EQUAL(ring_find(&r, "12-0"), 0);
	ring_release(&r);
}

static CU_TestInfo tests[] = {
	{ "frames: an event encoded once, with its close", test_frames_encode_once },
	{ "the count bound drops the oldest", test_count_bound_drops_the_oldest },
	{ "the byte bound", test_byte_bound },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suite[] = {
	{ "ring", NULL, NULL, NULL, NULL, tests },
	CU_SUITE_INFO_NULL,
};

int register_ring_tests(void)
{
	return CU_register_suites(suite) == CUE_SUCCESS ? 0 : -1;
}
