#!/usr/bin/perl
# Write the console's files (the arguments) as a C table, for src/console.c:
#   perl src/console/embed.pl src/console/index.html ... > src/console_files.inc
# Each file becomes one string literal (bytes other than printable ASCII as
# octal escapes), so the library carries the console and needs no file at
# run time.
use strict;
use warnings;

print "/* Made by src/console/embed.pl from src/console/; do not edit. */\n\n";
my @entries;
my $n = 0;
for my $path (@ARGV) {
	open(my $fh, '<:raw', $path) or die "$path: $!\n";
	local $/;
	my $bytes = <$fh>;
	close $fh;
	(my $name = $path) =~ s{.*/}{};
	print "static const char console_file_$n\[] =\n";
	for my $line ($bytes =~ /([^\n]*\n|[^\n]+)/g) {
		my $lit = join '', map {
			my $c = ord $_;
			($c >= 32 && $c < 127 && $_ ne '"' && $_ ne '\\' && $_ ne '?') ? $_ : sprintf('\\%03o', $c)
		} split //, $line;
		print "\t\"$lit\"\n";
	}
	print "\t\"\";\n\n";
	push @entries, "\t{\"$name\", console_file_$n, sizeof(console_file_$n) - 1},\n";
	$n++;
}
print "static const struct console_file\n{\n\tconst char *name;\n\tconst char *data;\n\tsize_t\t\tlength;\n}\t\t\tconsole_files[] =\n{\n", @entries, "};\n";
