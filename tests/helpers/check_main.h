/* check_main.h - the main() every Check test program shares. */
#ifndef MTPS_TEST_CHECK_MAIN_H
#define MTPS_TEST_CHECK_MAIN_H

#include <check.h>
#include <stdlib.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Runs the suite that <make_suite> returns; exit status 0 only when every check passed. */
#define CHECK_MAIN(make_suite)                                         \
	int main(void)                                                 \
	{                                                              \
		SRunner *sr = srunner_create(make_suite());            \
		int failed;                                            \
		srunner_run_all(sr, CK_NORMAL);                        \
		failed = srunner_ntests_failed(sr);                    \
		srunner_free(sr);                                      \
		return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;      \
	}

#endif
