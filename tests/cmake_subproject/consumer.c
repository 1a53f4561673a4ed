/* consumer.c — links msbnb built as a subproject (tests/cmake_subproject). */
#include <stdio.h>

#include <msbnb/msbnb.h>

int main(void) {
    printf("msbnb %s\n", msbnb_version_string());
    return 0;
}
