from djshare.cli import main

main()
